"""Named fault points so that tests can kill a real load at a known moment (SIGKILL from outside).

When $CGDW_FAULT_POINT names the point being reached, the process writes $CGDW_FAULT_MARKER and waits to
be killed. Without those variables this is a no-op.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def fault_point(name: str) -> None:
    if os.environ.get("CGDW_FAULT_POINT") != name:
        return
    marker = os.environ.get("CGDW_FAULT_MARKER")
    if marker:
        Path(marker).write_text(f"{os.getpid()} {name}\n")
    time.sleep(3600)
