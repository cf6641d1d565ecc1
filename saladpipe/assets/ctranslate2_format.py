"""Reader of CTranslate2's `model.bin`, so shipped weights load without CTranslate2 itself.

The layout, as CTranslate2's `ModelSpec._serialize` writes it (binary version 6), all
little-endian: uint32 version; spec name; uint32 spec revision; uint32 variable count;
per variable its name, uint8 rank, rank x uint32 dims, uint8 dtype code, uint32 byte
count and the raw bytes; then uint32 alias count and (alias, target) name pairs. A
string is a uint16 length (the trailing NUL included) and that many bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from saladpipe.data_schemas.errors import SaladpipeError

BINARY_VERSION = 6
# CTranslate2's dtype codes (`_dtype_to_type_id`); 5 is bfloat16, which numpy lacks.
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
}


class ModelFormatError(SaladpipeError):
    """A model.bin this reader cannot read: another version, an unknown dtype, cut short."""


@dataclass(frozen=True)
class CT2Model:
    """The variables of a model.bin by name, its aliases (alias -> target) and its spec."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


class _Cursor:
    """Reads the file's fields in order, naming the file when it ends too soon."""

    def __init__(self, data: bytes, origin: str) -> None:
        self.data, self.origin, self.offset = data, origin, 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise ModelFormatError(
                f"{self.origin}: truncated: needs {size} bytes at offset {self.offset}, "
                f"the file has {len(self.data)}"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def number(self, fmt: str) -> int:
        return int(struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0])

    def string(self) -> str:
        return self.take(self.number("H")).rstrip(b"\0").decode("utf-8")


def parse_model_bin(data: bytes, origin: str) -> CT2Model:
    """The variables of a model.bin's bytes; `origin` names the file in errors."""
    cursor = _Cursor(data, origin)
    version = cursor.number("I")
    if version != BINARY_VERSION:
        raise ModelFormatError(
            f"{origin}: CTranslate2 binary version {version}, only {BINARY_VERSION} is supported"
        )
    spec = cursor.string()
    revision = cursor.number("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(cursor.number("I")):
        name = cursor.string()
        shape = tuple(cursor.number("I") for _ in range(cursor.number("B")))
        code = cursor.number("B")
        if code not in DTYPES:
            raise ModelFormatError(
                f"{origin}: variable {name}: unsupported dtype code {code} "
                f"(known: {sorted(DTYPES)})"
            )
        size = cursor.number("I")
        dtype = DTYPES[code]
        if size != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise ModelFormatError(
                f"{origin}: variable {name}: {size} bytes do not hold shape {shape} of {dtype}"
            )
        variables[name] = np.frombuffer(cursor.take(size), dtype=dtype).reshape(shape)
    aliases = {cursor.string(): cursor.string() for _ in range(cursor.number("I"))}
    if cursor.offset != len(data):
        raise ModelFormatError(f"{origin}: {len(data) - cursor.offset} bytes after the aliases")
    return CT2Model(spec, revision, variables, aliases)


def read_model_bin(*parts: Path) -> CT2Model:
    """A model.bin from its file, or from pieces joined in order (a split upload)."""
    data = b"".join(part.read_bytes() for part in parts)
    return parse_model_bin(data, " + ".join(str(part) for part in parts))
