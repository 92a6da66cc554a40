"""nginx_ipv6_prefix_map: the regex entries of an nginx `map $remote_addr` that give every
IPv6 client the key of its /bits network, whatever its interface id.

nginx prints an IPv6 address as RFC 5952 text: '::' folds one run of zero groups, so the
network's groups are not always the first ones in the text. One regex per place of the
'::' (k groups before it, m after) puts the folded zeros back. The values are the
network's groups, e.g. "6:2001:db8:0:0" for 2001:db8::1 and 2001:db8::1:2:3:4 alike.
IPv4 addresses match none of them (the map's default applies).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

HEX = "[0-9a-f]{1,4}"


def nginx_ipv6_prefix_map(bits: Any) -> list[dict[str, str]]:
    """[{regex, value}] in the order nginx must try them."""
    if int(bits) % 16 or not 16 <= int(bits) <= 112:
        raise AnsibleFilterError(f"an IPv6 prefix for the limits is a multiple of 16 from 16 to 112, not {bits}")
    n = int(bits) // 16
    explicit = ":".join(f"(?<g{i}>{HEX})" for i in range(n))
    out = [{"regex": f"^{explicit}:", "value": "6:" + ":".join(f"$g{i}" for i in range(n))}]
    for k in range(n):  # groups before '::' (the first n groups are not all written out)
        for m in range(8 - k):  # groups after '::' (it stands for 8 - k - m >= 1 zero groups)
            zeros = 8 - k - m
            before = ":".join(f"(?<b{i}>{HEX})" for i in range(k))
            after = ":".join(f"(?<a{i}>{HEX})" for i in range(m))
            regex = f"^{before}::{after}$"
            net = [f"$b{i}" for i in range(k)] + ["0"] * min(zeros, n - k)
            net += [f"$a{i}" for i in range(n - len(net))]
            out.append({"regex": regex, "value": "6:" + ":".join(net)})
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"nginx_ipv6_prefix_map": nginx_ipv6_prefix_map}
