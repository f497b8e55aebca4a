"""deploy/nginx.conf as the deployment tests read it."""

from __future__ import annotations

import re

from tests.support import paths

NGINX = (paths.ROOT / "deploy" / "nginx.conf").read_text()


def upstream_ports(name: str) -> list[int]:
    """The loopback ports of nginx.conf's upstream ``name``, in the file's order."""
    block = re.search(rf"upstream {name} \{{([^}}]*)\}}", NGINX)
    assert block is not None, f"nginx.conf has no upstream {name}"
    return [int(p) for p in re.findall(r"server 127\.0\.0\.1:(\d+)", block.group(1))]
