// Builds the dashboard into ../files/dashboard (what the role copies to the monitoring
// node): the page, its script and style, and uPlot's browser build from node_modules
// (npm ci installs the version package-lock.json pins). Plain files, no bundler.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "files", "dashboard");
const uplot = join(here, "node_modules", "uplot");
const version = JSON.parse(readFileSync(join(uplot, "package.json"), "utf8")).version;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const name of ["index.html", "dashboard.js", "dashboard.css"]) {
  cpSync(join(here, "src", name), join(out, name));
}
cpSync(join(uplot, "dist", "uPlot.iife.min.js"), join(out, "uPlot.iife.min.js"));
cpSync(join(uplot, "dist", "uPlot.min.css"), join(out, "uPlot.min.css"));
cpSync(join(uplot, "LICENSE"), join(out, "uPlot.LICENSE"));
writeFileSync(join(out, "BUILD"), `uplot ${version}\n`);
console.log(`dashboard built in ${out} (uplot ${version})`);
