"""Completion records: a re-run of a run folder does only what is missing.

A finished task leaves a record under `state/done/<task>/<key>.pkl`, written after
its output files (which are themselves renamed into place). The key hashes the
task's name, its source code and its arguments, where a file argument stands for
its path and its content (sha256, cached per file version: `data_schemas/digests.py`):
an input with other bytes invalidates what was computed from it, an input rewritten
with the same bytes (a task redone after a kill, a corpus rebuilt in a fresh cache)
does not. Arguments naming files the task writes are keyed by path alone, and so are
its scratch inputs (what a stage declares: `pipeline/stage.py`).

A record holds the task's return value and the versions of the files it keeps; it is
used only while each of those files still holds the bytes it recorded. Prefect's own
cache policies key on the flow run or on argument values, not on file contents, and
keep results outside the run folder; these records live and die with it.
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
from saladpipe.data_schemas.digests import DigestCache, FileVersion
from saladpipe.data_schemas.io import atomic_path
from saladpipe.data_schemas.layout import RunLayout


def _digest(value: Any, h: Any, digests: DigestCache) -> None:
    """Feed a canonical form of an argument to the hash `h`."""
    if isinstance(value, Path):
        sha = digests.sha256(value) if value.is_file() else None
        h.update(f"{value}:{sha}".encode())
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
            _digest(getattr(value, field.name), h, digests)
    elif isinstance(value, Mapping):
        for k in sorted(value, key=repr):
            h.update(repr(k).encode())
            _digest(value[k], h, digests)
    elif isinstance(value, list | tuple):
        h.update(f"seq{len(value)}".encode())
        for item in value:
            _digest(item, h, digests)
    elif value is None or isinstance(value, str | int | float | bool):
        h.update(repr(value).encode())
    else:
        raise TypeError(f"cannot key a task argument of type {type(value).__name__}")


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


def task_key(
    name: str,
    fn: Callable[..., Any],
    arguments: Mapping[str, Any],
    digests: DigestCache,
    by_path: Iterable[str] = (),
    unkeyed: Iterable[str] = (),
) -> str:
    """sha256 of the task's name, source and arguments: input files by path and content,
    the arguments named in `by_path` (files it writes, scratch files) by path alone, and
    `unkeyed` arguments (which attempt asks, such as a flow run id) not at all."""
    named = set(by_path)
    skipped = set(unkeyed)
    h = hashlib.sha256(name.encode())
    h.update(_source(fn).encode())
    keyed = {k: _as_names(v) if k in named else v for k, v in arguments.items()}
    _digest({k: v for k, v in keyed.items() if k not in skipped}, h, digests)
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
    """A finished task: what it returned and the versions of the files it keeps."""

    result: Any
    outputs: tuple[FileVersion, ...]

    def still_valid(self, digests: DigestCache) -> bool:
        """Every kept file is there with the bytes it had (a file that was only touched or
        copied over with the same bytes still counts)."""
        for recorded in self.outputs:
            current = digests.version(Path(recorded.path))
            if current is None or current.sha256 != recorded.sha256:
                return False
        return True


class CompletionStore:
    """The records of one run folder (`state/done/`), and the digests they rely on."""

    def __init__(self, layout: RunLayout) -> None:
        self.root = layout.done_dir
        self.digests = DigestCache(layout.digests_dir)

    def _path(self, name: str, key: str) -> Path:
        return self.root / name / f"{key}.pkl"

    def key(
        self,
        name: str,
        fn: Callable[..., Any],
        arguments: Mapping[str, Any],
        by_path: Iterable[str] = (),
        unkeyed: Iterable[str] = (),
    ) -> str:
        """The key of a task of this run folder (`task_key` with this folder's digests)."""
        return task_key(name, fn, arguments, self.digests, by_path, unkeyed)

    def lookup(self, name: str, key: str) -> Completion | None:
        """The record of an identical finished task whose kept files are all intact."""
        path = self._path(name, key)
        try:
            with path.open("rb") as fh:
                record = pickle.load(fh)  # written by `record` below, in this run's state/
        except (FileNotFoundError, EOFError, pickle.UnpicklingError, AttributeError, TypeError):
            return None
        try:
            intact = isinstance(record, Completion) and record.still_valid(self.digests)
        except (AttributeError, TypeError):  # a record in an older format
            return None
        return record if intact else None

    def record(self, name: str, key: str, result: Any, outputs: Iterable[Path]) -> None:
        """Record a finished task; files that do not exist (nothing to write) are left out."""
        versions = (self.digests.version(p) for p in dict.fromkeys(outputs))
        path = self._path(name, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, tmp.open("wb") as fh:
            pickle.dump(Completion(result, tuple(v for v in versions if v is not None)), fh)
