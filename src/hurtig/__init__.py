"""hurtig: serverless-style event processing on your own nodes (API and worker runtime)."""
