"""The model.bin reader: bytes written as CTranslate2 writes them read back exactly."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from saladpipe.assets.ctranslate2_format import ModelFormatError, read_model_bin

CODES: dict[np.dtype, int] = {
    np.dtype("float32"): 0,
    np.dtype("int8"): 1,
    np.dtype("int16"): 2,
    np.dtype("float16"): 4,
}


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def model_bin(
    variables: dict[str, np.ndarray],
    aliases: dict[str, str],
    version: int = 6,
    codes: dict[np.dtype, int] = CODES,
) -> bytes:
    """The bytes CTranslate2's `ModelSpec._serialize` would write for these variables."""
    out = (
        struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<II", 3, len(variables))
    )
    for name, value in variables.items():
        out += _string(name) + struct.pack("<B", value.ndim)
        out += b"".join(struct.pack("<I", dim) for dim in value.shape)
        out += struct.pack("<BI", codes[value.dtype], value.nbytes) + value.tobytes()
    out += struct.pack("<I", len(aliases))
    return out + b"".join(_string(a) + _string(t) for a, t in aliases.items())


VARIABLES: dict[str, np.ndarray] = {
    "encoder/conv1/weight": np.arange(24, dtype=np.float16).reshape(2, 3, 4) / 7,
    "encoder/num_heads": np.array(6, dtype=np.int16),
    "decoder/activation": np.array(3, dtype=np.int8),
    "decoder/embeddings/weight": np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2),
}
ALIASES = {"decoder/projection/weight": "decoder/embeddings/weight"}


def test_variables_and_aliases_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(model_bin(VARIABLES, ALIASES))
    model = read_model_bin(path)
    assert (model.spec, model.revision, model.aliases) == ("WhisperSpec", 3, ALIASES)
    assert list(model.variables) == list(VARIABLES)
    for name, value in VARIABLES.items():
        read = model.variables[name]
        assert read.dtype == value.dtype and read.shape == value.shape
        assert np.array_equal(read, value)


def test_a_split_file_reads_as_its_pieces_joined_in_order(tmp_path: Path) -> None:
    data = model_bin(VARIABLES, ALIASES)
    (tmp_path / "a").write_bytes(data[:100])
    (tmp_path / "b").write_bytes(data[100:])
    model = read_model_bin(tmp_path / "a", tmp_path / "b")
    assert np.array_equal(
        model.variables["decoder/embeddings/weight"], VARIABLES["decoder/embeddings/weight"]
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (model_bin(VARIABLES, ALIASES, version=5), "binary version 5, only 6"),
        (model_bin(VARIABLES, ALIASES, codes={**CODES, np.dtype("float16"): 5}), "dtype code 5"),
        (model_bin(VARIABLES, ALIASES)[:-30], "truncated"),
        (model_bin(VARIABLES, ALIASES) + b"x", "1 bytes after the aliases"),
    ],
    ids=["version", "dtype", "truncated", "trailing"],
)
def test_files_it_cannot_read_are_refused_naming_the_file(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    with pytest.raises(ModelFormatError, match=message) as caught:
        read_model_bin(path)
    assert str(path) in str(caught.value)
