"""Plugins by name: the mechanics the TTS engine and selection strategy registries share.

A plugin is a class with a `name` and a settings model (a frozen pydantic model that
forbids unknown keys) read from its own config table, `[<section>.<name>]`. Adding one
is one `register` call, in the tree or in a user's module. A config names a plugin by
its registered name, or as `module:Class`, which imports the module first, so a config
can name a plugin that nothing has imported yet. Unknown names, tables and settings
are config errors naming the key.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from saladpipe.data_schemas.config import format_validation_error
from saladpipe.data_schemas.errors import ConfigError


class Plugin(Protocol):
    """What a registry needs of a class: the name configs and outputs know it by."""

    name: ClassVar[str]


P = TypeVar("P", bound=Plugin)


class Registry(Mapping[str, type[P]], Generic[P]):
    """Subclasses of `base` by their `name`; each carries its settings as the nested
    pydantic model named `settings` (an engine's `Options`, a strategy's `Params`).

    `reserved` are the keys of the config section, which a plugin's table would shadow.
    """

    def __init__(
        self, base: type, kind: str, section: str, settings: str, reserved: Collection[str]
    ) -> None:
        self._base = base
        self._kind = kind
        self._section = section
        self._settings = settings
        self._reserved = frozenset(reserved)
        self._classes: dict[str, type[P]] = {}

    def __getitem__(self, name: str) -> type[P]:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def register(self, cls: type[P]) -> type[P]:
        """Add `cls` under its name and return it; registering it again is a no-op, so a
        module that registers its plugins may be imported twice (a worker process)."""
        if not (isinstance(cls, type) and issubclass(cls, self._base)):
            raise TypeError(f"{cls!r} is not a subclass of {self._base.__qualname__}")
        name = cls.name
        if not name or name in self._reserved or ":" in name or "." in name:
            raise ValueError(
                f"{_path(cls)}: {self._kind} name {name!r} must be set, hold no ':' or '.', "
                f"and be none of the [{self._section}] keys ({', '.join(sorted(self._reserved))})"
            )
        model = getattr(cls, self._settings, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or (
            model.model_config.get("extra"),
            model.model_config.get("frozen"),
        ) != ("forbid", True):
            raise TypeError(
                f"{_path(cls)}.{self._settings} must be a frozen pydantic model that forbids "
                f"unknown keys (subclass {self._base.__qualname__}.{self._settings})"
            )
        known = self._classes.get(name)
        if known is not None and _path(known) != _path(cls):
            raise ValueError(f"{self._kind} {name!r} is already registered by {_path(known)}")
        self._classes[name] = cls
        return cls

    def resolve(self, name: str) -> type[P]:
        """The class a config names: a registered name, or `module:Class` (imported and
        registered here); anything else is a config error."""
        key = f"{self._section}.{self._kind}"
        if ":" not in name:
            if name not in self._classes:
                raise ConfigError(f"config error: {key}: {self._unknown(name)}")
            return self._classes[name]
        module_name, _, class_name = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"config error: {key}: cannot import {name!r}: {exc}") from None
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type):
            raise ConfigError(f"config error: {key}: {module_name!r} has no class {class_name!r}")
        try:
            return self.register(cls)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config error: {key}: {name!r}: {exc}") from None

    def settings(self, cls: type[P], tables: Mapping[str, Any]) -> BaseModel:
        """`cls`'s settings from its table among `tables` (its defaults without one)."""
        model: type[BaseModel] = getattr(cls, self._settings)
        try:
            return model.model_validate(tables.get(cls.name, {}))
        except ValidationError as exc:
            prefix = f"{self._section}.{cls.name}"
            raise ConfigError(format_validation_error(None, exc, prefix)) from None

    def check_tables(self, tables: Mapping[str, Any]) -> None:
        """Every `[<section>.<name>]` table names a registered plugin and holds valid
        settings for it, whether or not the run uses that plugin."""
        for name in tables:
            if name not in self._classes:
                raise ConfigError(f"config error: {self._section}.{name}: {self._unknown(name)}")
            self.settings(self._classes[name], tables)

    def _unknown(self, name: str) -> str:
        known = ", ".join(sorted(self._classes))
        return f"unknown {self._kind} {name!r} (have: {known}; or name a module:Class)"


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
