"""Progress of long steps: a bar on a terminal, periodic log lines elsewhere (CI, Prefect)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from tqdm import tqdm

logger = logging.getLogger("saladpipe")


class Progress:
    """Counts work done (texts, probes) and optionally a second quantity (seconds of audio)."""

    def __init__(
        self,
        description: str,
        total: float,
        unit: str,
        extra_unit: str | None = None,
        log_every_s: float = 10.0,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.extra_unit = extra_unit
        self.done = 0.0
        self.extra = 0.0
        self._log_every_s = log_every_s
        self._start = self._last_log = time.monotonic()
        self._bar = tqdm(total=total, desc=description, unit=unit) if sys.stderr.isatty() else None

    def update(self, amount: float, extra: float = 0.0) -> None:
        self.done += amount
        self.extra += extra
        if self._bar is not None:
            if self.extra_unit:
                self._bar.set_postfix_str(f"{self.extra:.1f} {self.extra_unit}", refresh=False)
            self._bar.update(amount)
            return
        now = time.monotonic()
        if now - self._last_log >= self._log_every_s:
            self._last_log = now
            logger.info("%s: %s", self.description, self._summary())

    def _summary(self) -> str:
        text = f"{self.done:.0f}/{self.total:.0f} {self.unit}"
        return f"{text}, {self.extra:.1f} {self.extra_unit}" if self.extra_unit else text

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        if exc_type is None:
            elapsed = time.monotonic() - self._start
            logger.info("%s: %s in %.1f s", self.description, self._summary(), elapsed)


@contextmanager
def progress_to_stderr() -> Iterator[None]:
    """Progress lines of a long step run before any flow (the first model build) reach
    stderr: off a terminal there is no bar, and a silent step of minutes looks hung.

    The level is raised for the step; a handler is added only where no handler would
    see the lines (under Prefect the root logger has its console handler, which then
    prints each line once), and both go when the step ends."""
    handler = None if logger.hasHandlers() else logging.StreamHandler(sys.stderr)
    level = logger.level
    if handler is not None:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(level)
