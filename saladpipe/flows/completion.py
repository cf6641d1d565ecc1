"""Completion records: a re-run of a run folder does only what is missing.

A finished task leaves a record under `state/done/<task>/<key>.pkl`, written after
its output files (which are themselves renamed into place). The key hashes the
task's name, its source code and its arguments, where a file argument stands for its
path, size and modification time, so that a re-written input invalidates what was
computed from it. A record holds the task's return value and the files it made; it
is used only while each of those files is still there, unchanged. Prefect's own
cache policies key on the flow run or on argument values, not on file contents,
and keep results outside the run folder; these records live and die with it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from saladpipe.data_schemas.config import WHERE_NOT_WHAT, RunConfig
from saladpipe.data_schemas.io import atomic_path
from saladpipe.data_schemas.layout import RunLayout

FileStamp = tuple[str, int, int]  # path, size, mtime_ns


def stamp(path: Path) -> FileStamp | None:
    """What identifies a file's content cheaply; None when it is not there."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return str(path), st.st_size, st.st_mtime_ns


def _digest(value: Any, h: Any) -> None:
    """Feed a canonical form of an argument to the hash `h`."""
    if isinstance(value, Path):
        h.update(repr(stamp(value) if value.is_file() else str(value)).encode())
    elif isinstance(value, RunLayout):
        h.update(f"layout:{value.root}:{value.round_index}".encode())
    elif isinstance(value, RunConfig):
        h.update(value.model_dump_json(exclude=set(WHERE_NOT_WHAT)).encode())
    elif isinstance(value, BaseModel):
        h.update(value.model_dump_json().encode())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(type(value).__name__.encode())
        for field in dataclasses.fields(value):
            h.update(field.name.encode())
            _digest(getattr(value, field.name), h)
    elif isinstance(value, Mapping):
        for k in sorted(value, key=repr):
            h.update(repr(k).encode())
            _digest(value[k], h)
    elif isinstance(value, list | tuple):
        h.update(f"seq{len(value)}".encode())
        for item in value:
            _digest(item, h)
    elif value is None or isinstance(value, str | int | float | bool):
        h.update(repr(value).encode())
    else:
        raise TypeError(f"cannot key a task argument of type {type(value).__name__}")


# Arguments that name files a task writes: keyed by name, since they change as it runs.
OUTPUT_ARGUMENTS = frozenset({"out_path", "out_paths", "quarantine_path"})


def _as_names(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_as_names(v) for v in value]
    return value


@functools.cache
def _source(fn: Callable[..., Any]) -> str:
    """A task's code, read from its file once per process rather than at every call."""
    return inspect.getsource(fn)


def task_key(name: str, fn: Callable[..., Any], arguments: Mapping[str, Any]) -> str:
    """sha256 of the task's name, source and arguments: input files by path, size and
    mtime, output files (`OUTPUT_ARGUMENTS`) by path alone."""
    h = hashlib.sha256(name.encode())
    h.update(_source(fn).encode())
    _digest({k: _as_names(v) if k in OUTPUT_ARGUMENTS else v for k, v in arguments.items()}, h)
    return h.hexdigest()


def paths_in(value: Any) -> Iterable[Path]:
    """Every Path inside a task's return value (lists, tuples, dicts, dataclasses)."""
    if isinstance(value, Path):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from paths_in(getattr(value, field.name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from paths_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from paths_in(item)


@dataclasses.dataclass(frozen=True)
class Completion:
    """A finished task: what it returned and the files it left."""

    result: Any
    outputs: tuple[FileStamp, ...]

    def still_valid(self) -> bool:
        return all(stamp(Path(path)) == (path, size, mtime) for path, size, mtime in self.outputs)


class CompletionStore:
    """The records of one run folder (`state/done/`)."""

    def __init__(self, layout: RunLayout) -> None:
        self.root = layout.done_dir

    def _path(self, name: str, key: str) -> Path:
        return self.root / name / f"{key}.pkl"

    def lookup(self, name: str, key: str) -> Completion | None:
        """The record of an identical finished task whose files are all still in place."""
        path = self._path(name, key)
        try:
            with path.open("rb") as fh:
                record = pickle.load(fh)  # written by `record` below, in this run's state/
        except (FileNotFoundError, EOFError, pickle.UnpicklingError):
            return None
        if not isinstance(record, Completion) or not record.still_valid():
            return None
        return record

    def record(self, name: str, key: str, result: Any, outputs: Iterable[Path]) -> None:
        """Record a finished task; files that do not exist (nothing to write) are left out."""
        stamps = tuple(s for s in (stamp(p) for p in dict.fromkeys(outputs)) if s is not None)
        path = self._path(name, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, tmp.open("wb") as fh:
            pickle.dump(Completion(result, stamps), fh)
