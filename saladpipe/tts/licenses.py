"""Licences of voices and models: a canonical name per clip, and whether it allows commercial use.

Model cards and catalogues spell licences many ways ("apache 2.0", "CC BY-NC-ND
4.0", "CPML"); each is mapped to one SPDX-like name that is recorded with every
clip. Commercial use is allowed only for licences known to allow it: a licence
that is unknown, custom or non-commercial is refused when a run requires it.
"""

from __future__ import annotations

import re
from pathlib import Path

UNKNOWN = "unknown"

# (pattern on the lower-cased text, canonical name, allows commercial use); first match wins.
_KNOWN: tuple[tuple[str, str, bool], ...] = (
    (r"coqui public model license|\bcpml\b", "CPML", False),
    (r"non.?commercial|\bby.?nc\b|\bnc.?(nd|sa)\b", "CC-BY-NC", False),
    (r"\bcc0\b|public domain|creative commons zero", "CC0-1.0", True),
    (r"\bcc.?by.?sa\b|attribution.?sharealike", "CC-BY-SA-4.0", True),
    (r"\bcc.?by\b|creative commons attribution", "CC-BY-4.0", True),
    (r"apache", "Apache-2.0", True),
    (r"\bmit\b", "MIT", True),
    (r"bsd.?3|bsd 3-clause", "BSD-3-Clause", True),
    (r"\bbsd\b", "BSD", True),
    (r"mozilla public license|\bmpl\b", "MPL-2.0", True),
    (r"\blgpl|lesser general public", "LGPL-3.0", True),
    (r"\bgpl.?v?3|general public license.{0,40}version 3", "GPL-3.0-or-later", True),
    (r"\bgpl\b|general public license", "GPL", True),
    (r"openrail", "OpenRAIL", True),
)

# Files a model or voice folder may carry its licence in, most specific first.
_LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "license.txt", "MODEL_CARD", "README.md")


def canonical_license(raw: str | None) -> str:
    """One name per licence (SPDX-like where one exists); `unknown` when nothing matches."""
    if not raw or not raw.strip():
        return UNKNOWN
    text = raw.strip().lower()
    for pattern, name, _ in _KNOWN:
        if re.search(pattern, text):
            return name
    return raw.strip() if text.startswith("custom") else UNKNOWN


def allows_commercial_use(license_name: str) -> bool:
    """True only for licences known to allow commercial use of the audio."""
    return any(name == license_name and ok for _, name, ok in _KNOWN)


def license_in_folder(folder: Path) -> str | None:
    """The licence a folder declares: a `* License:` line of a model card, or a licence file."""
    for name in _LICENSE_FILES:
        path = folder / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")[:4000]
        declared = re.search(r"^\W*licen[cs]e\W*:\s*(.+)$", text, re.IGNORECASE | re.MULTILINE)
        found = canonical_license(declared.group(1) if declared else text)
        if found != UNKNOWN:
            return found
    return None
