"""Installed packages that ship weights: their versions and the files inside them."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from pathlib import Path

from saladpipe.data_schemas.errors import ConfigError
from saladpipe.progress import logger


def installed_packages(
    packages: tuple[tuple[str, str], ...], what: str
) -> tuple[tuple[str, str], ...]:
    """The installed (distribution, version) pairs of `packages` (each with the version the
    conversion was checked on); a missing one is a config error naming the pip command,
    another version a warning."""
    found = []
    for distribution, checked in packages:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            wanted = " ".join(f"{d}=={v}" for d, v in packages)
            raise ConfigError(f"config error: {what} needs: pip install {wanted}") from None
        if version != checked:
            logger.warning(
                "%s %s is installed; %s was checked on %s", distribution, version, what, checked
            )
        found.append((distribution, version))
    return tuple(found)


def package_file(spec: str) -> Path:
    """A file inside an installed package, from "package/inner/path"."""
    package, _, inner = spec.partition("/")
    return Path(str(importlib.resources.files(package).joinpath(inner)))


def licence_texts(distribution: str) -> dict[str, str]:
    """The licence files a distribution ships in its metadata (name -> text)."""
    meta = importlib.metadata.distribution(distribution)
    texts = {}
    for file in meta.files or []:
        if file.parts[-2:-1] == ("licenses",) and (text := file.read_text(encoding="utf-8")):
            texts[file.name] = text
    return texts


def distribution_file(distribution: str, inner: str) -> Path:
    """A file a distribution installed, found from its metadata without importing it (some
    weight packages import runtimes at import time that saladpipe does not install)."""
    return Path(str(importlib.metadata.distribution(distribution).locate_file(inner)))
