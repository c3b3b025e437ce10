"""One line per event on stderr for long-running processes (`smsdispatch serve`), never a flood.

`Deduper` is the pure part: a line equal to the one before it is held back and counted; the count is
said once, when a different line comes or after `every` seconds ("… (repeated 28 times in 5 minutes)").
`DedupHandler` puts it in front of a stream for the `logging` records of every module, and stamps each
line with Tehran time and its offset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from campaigns.windows import TEHRAN


class Deduper:
    """Say a repeated line once, then how often it repeated: when another line comes, or every `every` s."""

    def __init__(self, every: float = 300.0) -> None:
        self.every = every
        self._last: str | None = None
        self._repeats = 0
        self._since = 0.0

    def _summary(self, now: float) -> str:
        minutes = max(round((now - self._since) / 60), 1)
        return f"{self._last} (repeated {self._repeats} more time{'s' if self._repeats != 1 else ''} in {minutes} min)"

    def offer(self, line: str, now: float) -> list[str]:
        """The lines to write now for `line` arriving at `now` (seconds, any monotonic clock)."""
        if line == self._last:
            self._repeats += 1
            if now - self._since < self.every:
                return []
            out = [self._summary(now)]
            self._repeats, self._since = 0, now
            return out
        out = [self._summary(now)] if self._repeats else []
        self._last, self._repeats, self._since = line, 0, now
        return [*out, line]

    def flush(self, now: float) -> list[str]:
        """The count still held back (at exit)."""
        out = [self._summary(now)] if self._repeats else []
        self._repeats = 0
        return out


def stamp(created: float) -> str:
    """'2026-11-29 13:05:09 +03:30': Tehran time with its offset."""
    local = datetime.fromtimestamp(created, TEHRAN)
    z = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {z[:3]}:{z[3:]}"


class DedupHandler(logging.Handler):
    """A stream handler that writes '<Tehran time> <level> <message>' through a `Deduper`."""

    def __init__(
        self, stream: TextIO, every: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.stream = stream
        self.dedup = Deduper(every)
        self.clock = clock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if getattr(record, "error", None):  # the exception, redacted (workers.logs.Redact)
                message = f"{message}: {record.error}"
            elif record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message = f"{message}: {type(exc).__name__}: {exc}"
            level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
            with self.lock or _NoLock():
                for line in self.dedup.offer(f"{level}{message}", self.clock()):
                    self.stream.write(f"{stamp(record.created)} {line}\n")
                self.stream.flush()
        except Exception:  # noqa: BLE001 - logging must never stop the service
            self.handleError(record)

    def close(self) -> None:
        for line in self.dedup.flush(self.clock()):
            self.stream.write(f"{stamp(time.time())} {line}\n")
        self.stream.flush()
        super().close()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
