"""Specs of heavy objects: what a stage needs built once per worker, not once per shard.

A model or a pool of TTS worker processes takes seconds to build and gigabytes to hold,
so a stage does not build its own: the flow passes a spec (a small frozen dataclass,
picklable for Dask workers), the executor builds the object from it once per worker
process and hands it to every stage call that passes an equal spec
(flows/resources.py). The spec is also what a stage's resume key records of the
object: the sections it is built from, or the content ids of the weights it loads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar

T = TypeVar("T")


class Heavy(ABC, Generic[T]):
    """A frozen, hashable description of an object that is costly to build."""

    #: What the object is, for the log ("embedder: built in process 123") and counters.
    kind: ClassVar[str]

    @abstractmethod
    def build(self) -> T:
        """Build the object (in the worker process that will use it)."""
