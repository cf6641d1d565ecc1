"""Heavy objects (models, voices) built once per worker process and reused by every task.

"Worker process" is whichever process runs the tasks: the flow's own process with the
thread task runner (its threads share one copy, built by the first thread that asks),
or each Dask worker process, which builds its own copy on its first task and keeps it
for every later task, of this run and, on a long-lived cluster, of later runs. An
object is identified by its spec (`data_schemas/heavy.py`): another config section or
checkpoint is another spec and another build.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from typing import Any, TypeVar

from saladpipe.data_schemas.heavy import Heavy

T = TypeVar("T")
logger = logging.getLogger("saladpipe")

# How many objects of each kind this process built: one per distinct spec, whatever the
# number of tasks (a test reads it on each Dask worker).
built: Counter[str] = Counter()

_objects: dict[Heavy[Any], Any] = {}
_locks: dict[Heavy[Any], threading.Lock] = {}
_guard = threading.Lock()


def obtain(spec: Heavy[T]) -> T:
    """The object `spec` describes, built on first use in this process; threads that ask
    while it is being built wait for it and share it."""
    with _guard:
        lock = _locks.setdefault(spec, threading.Lock())
    with lock:
        if spec not in _objects:
            _objects[spec] = spec.build()
            built[spec.kind] += 1
            logger.info("%s: built in process %d", spec.kind, os.getpid())
        value: T = _objects[spec]
        return value


def close_all() -> None:
    """Release what the objects hold outside this process (TTS worker processes) and forget
    them; called when a run ends."""
    with _guard:
        objects = list(_objects.values())
        _objects.clear()
        _locks.clear()
    for obj in objects:
        close = getattr(obj, "close", None)
        if callable(close):
            close()
