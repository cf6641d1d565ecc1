"""One process at a time per run folder.

The lock is an advisory `flock` on state/run.lock, so it is released by the kernel
when its holder dies (even by SIGKILL) and a resumed run can take it at once. The
file names the holder (pid, host, start time) so that a refused second process can
say who is working on the folder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from saladpipe.data_schemas.errors import SaladpipeError


class RunLockedError(SaladpipeError):
    """Another live process holds the run folder."""


class RunLock:
    """Context manager holding the run folder's lock for the life of a run."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "run.lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
            os.close(fd)
            raise RunLockedError(
                f"run folder {self.path.parent.parent} is in use by another process "
                f"({_describe(holder)})"
            ) from None
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "holder unknown"
