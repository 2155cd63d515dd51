"""Whether a recorded process id still runs: how another terminal finds a live deployment."""

from __future__ import annotations

import os


def process_alive(pid: int | None) -> bool:
    """True for a running process (also one of another user, which we may not signal)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
