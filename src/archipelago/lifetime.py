"""Child processes that end with the process that started them, however it ends (SIGKILL too)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> None:
    """In a child, before its exec or first thing after: be sent `sig` when the parent dies (Linux
    prctl; elsewhere nothing). The kernel sends it only for a death after this call, so a child
    whose parent is already gone ends here: `parent` is the pid that started it, taken before the
    fork (without it, being adopted by init is the sign). A program that sets the same itself
    (bubblewrap's --die-with-parent) does so only once it runs: a parent killed before that left it
    running, with the container it went on to start."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    orphaned = os.getppid() != parent if parent is not None else os.getppid() == 1
    if orphaned:
        os._exit(1)
