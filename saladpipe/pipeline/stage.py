"""What a stage declares, so that an executor can run it without knowing it.

A stage is a plain function over files (it runs without Prefect: tests and benchmarks
call it directly) plus a `Stage` declaration beside it:

- `reads`: the parameters that name input files; a resumed run keys the stage by
  their content, so new bytes redo it and the same bytes keep it;
- `keeps`: the parameters that name files it writes and keeps (every path in its
  return value is kept too); a finished stage counts as finished while they hold the
  bytes they had;
- `scratch`: the parameters that name scratch files it reads, which an earlier stage
  wrote only for it and its other inputs determine; they are deleted once it has
  finished, and never make a finished stage run again;
- `unkeyed`: parameters that say which attempt asks (a flow run id), not what to make;
- `resource`: what it holds while it runs (the CPU, the scoring models' device, the
  TTS voices' devices), which the executor turns into concurrency tags;
- `needs`: the parameters that receive heavy objects (an embedder, the TTS voices, the
  scoring models); the flow passes `Heavy` specs (data_schemas/heavy.py), the executor
  builds each once per worker, hands the stage the object, and keys it by the spec;
- `give_up`: what to do with its rows when it keeps failing (quarantine them), if the
  run can go on without it.

Config reaches a stage as the sections it uses, so its signature says which they are
and its resume key changes with those alone (`Stage.config_sections`).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_type_hints

from pydantic import BaseModel

R = TypeVar("R")

#: Called with a failed stage's arguments and a detail naming its last error; quarantines
#: its rows and returns what the stage would have returned.
GiveUp = Callable[[dict[str, Any], str], Any]


class Resource(enum.Enum):
    """What a stage holds while it runs."""

    CPU = "cpu"
    SCORING = "scoring"  # the teacher and student, on the configured models.device
    TTS = "tts"  # the run's voices, each on the device its engine wants


@dataclass(frozen=True)
class Stage(Generic[R]):
    """A stage's function and what it declares about it (see the module docstring)."""

    name: str
    run: Callable[..., R]
    reads: tuple[str, ...] = ()
    keeps: tuple[str, ...] = ()
    scratch: tuple[str, ...] = ()
    unkeyed: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    resource: Resource = Resource.CPU
    give_up: GiveUp | None = None
    resumable: bool = True

    def __post_init__(self) -> None:
        parameters = set(inspect.signature(self.run).parameters)
        declared = {*self.reads, *self.keeps, *self.scratch, *self.unkeyed, *self.needs}
        if unknown := declared - parameters:
            raise TypeError(f"stage {self.name}: no parameters {sorted(unknown)}")

    @property
    def config_sections(self) -> tuple[str, ...]:
        """The config sections the stage takes (parameters annotated with a section type)."""
        hints = get_type_hints(self.run)
        return tuple(
            name
            for name, hint in hints.items()
            if isinstance(hint, type) and issubclass(hint, BaseModel) and name != "return"
        )
