"""The convert-once cache: built once, verified on every use, rebuilt when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saladpipe.assets.cache import RECORD_FILE, AssetKey, ensure_converted, sha256_file


def _key(tmp_path: Path, version: str = "1.0.0") -> AssetKey:
    source = tmp_path / "source.bin"
    source.write_bytes(b"weights")
    return AssetKey((("some-weights", version),), "MIT", (("some_weights/source.bin", source),), 1)


class Builder:
    """A conversion that writes two files and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, out: Path) -> None:
        self.calls += 1
        (out / "model.safetensors").write_bytes(b"converted weights")
        (out / "sub").mkdir()
        (out / "sub" / "config.json").write_text("{}")


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_second_call_converts_nothing_and_changes_nothing(tmp_path: Path) -> None:
    build, key = Builder(), _key(tmp_path)
    folder = ensure_converted("demo", key, build, tmp_path / "cache")
    before = _snapshot(folder)
    assert ensure_converted("demo", key, build, tmp_path / "cache") == folder
    assert build.calls == 1
    assert _snapshot(folder) == before
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == [folder.name]


def test_the_record_names_source_licence_and_every_file_checksum(tmp_path: Path) -> None:
    key = _key(tmp_path)
    folder = ensure_converted("demo", key, Builder(), tmp_path / "cache")
    record = json.loads((folder / RECORD_FILE).read_text())
    assert record["name"] == "demo" and record["licence"] == "MIT"
    assert record["packages"] == {"some-weights": "1.0.0"} and record["format_version"] == 1
    assert record["sources"] == {"some_weights/source.bin": sha256_file(tmp_path / "source.bin")}
    assert record["outputs"] == {
        "model.safetensors": sha256_file(folder / "model.safetensors"),
        "sub/config.json": sha256_file(folder / "sub" / "config.json"),
    }


@pytest.mark.parametrize("damage", ["corrupt", "delete", "add", "record"])
def test_a_damaged_entry_is_detected_and_rebuilt(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    build, key = Builder(), _key(tmp_path)
    folder = ensure_converted("demo", key, build, tmp_path / "cache")
    if damage == "corrupt":
        (folder / "model.safetensors").write_bytes(b"converted weightz")
    elif damage == "delete":
        (folder / "sub" / "config.json").unlink()
    elif damage == "add":
        (folder / "stray.txt").write_text("?")
    else:
        (folder / RECORD_FILE).write_text("{")
    assert ensure_converted("demo", key, build, tmp_path / "cache") == folder
    assert build.calls == 2
    assert "damaged" in caplog.text
    assert (folder / "model.safetensors").read_bytes() == b"converted weights"
    assert not (folder / "stray.txt").exists()


def test_a_new_package_version_is_a_new_entry_and_a_failed_build_leaves_nothing(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    first = ensure_converted("demo", _key(tmp_path), Builder(), cache)

    def broken(out: Path) -> None:
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError):
        ensure_converted("demo", _key(tmp_path, "2.0.0"), broken, cache)
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [first.name]
