"""Log lines of every process: readable by default, one JSON object per line with
SMSDISPATCH_LOG_FORMAT=json; secrets redacted in both.

A JSON line carries `time` (ISO-8601, UTC), `level`, `process` (cli, serve, worker, beat, web), `pid`,
`campaign`, `chunk`, `provider` (null when not known), `event` (the `event` given to the log call, else
the logger's name), `message`, and `error` when an exception is logged. `campaign`, `chunk` and
`provider` come from `bind(...)`, which the operations call around their work, so every line logged
inside (a provider client's, a store's) carries them without passing them along.

Redaction (`Redact`, a filter on every handler this module installs or touches): the values of the
credential variables (`SMSDISPATCH_*_APIKEY`, `_TOKEN`, `_PASSWORD`, `_USERNAME`, the metrics token),
the passwords of the database, broker and Redis URLs, and anything shaped like `apikey=…` or
`password: …` (`workers.errors.redact`) become `***`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from workers.errors import redact

FORMAT_ENV = "SMSDISPATCH_LOG_FORMAT"
_FIELDS = ("campaign", "chunk", "provider")
_context: dict[str, ContextVar[Any]] = {name: ContextVar(f"log_{name}", default=None) for name in _FIELDS}
_SECRET_SUFFIXES = ("_APIKEY", "_TOKEN", "_PASSWORD", "_USERNAME", "_SECRET")
_URLS = ("SMSDISPATCH_DATABASE_URL", "SMSDISPATCH_BROKER_URL", "SMSDISPATCH_REDIS_URL")


@contextmanager
def bind(**values: Any) -> Iterator[None]:
    """`with bind(campaign=12, chunk=340, provider="ghasedak"):` every line logged inside carries them;
    `tag(...)` inside adds what is learnt on the way. All three are as before once the block ends."""
    tokens = [(var, var.set(values.get(k, var.get()))) for k, var in _context.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def tag(**values: Any) -> None:
    """Set campaign, chunk or provider for the rest of the enclosing `bind` block."""
    for key, value in values.items():
        if key in _context:
            _context[key].set(value)


def wants_json(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return (env.get(FORMAT_ENV) or "").strip().lower() == "json"


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The credential values and URL passwords of the environment (what must never be printed)."""
    env = os.environ if env is None else env
    found = [v for k, v in env.items() if k.startswith("SMSDISPATCH_") and k.endswith(_SECRET_SUFFIXES) and v]
    for name in _URLS:
        try:
            password = urlsplit(env.get(name) or "").password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return sorted(set(found), key=len, reverse=True)


class Redact(logging.Filter):
    """Rewrites a record's message (and exception text) with the secrets removed; never drops a record."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = secrets  # None: the environment's, read at each record (a config file may add some)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep the record as it is
            return True
        secrets = secret_values() if self.secrets is None else self.secrets
        record.msg, record.args = redact(message, secrets), None
        if record.exc_info and record.exc_info[1] is not None and not getattr(record, "error", None):
            exc = record.exc_info[1]
            record.error = redact(f"{type(exc).__name__}: {exc}", secrets)
            # a readable formatter prints exc_text when it is set: the traceback, redacted
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), secrets)
        return True


class Context(logging.Filter):
    """Adds campaign, chunk and provider from `bind` (a value given in `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (the module docstring's keys)."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self.process,
            "pid": record.process,
            "campaign": getattr(record, "campaign", None),
            "chunk": getattr(record, "chunk", None),
            "provider": getattr(record, "provider", None),
            "event": getattr(record, "event", None) or record.name,
            "message": record.getMessage(),
        }
        error = getattr(record, "error", None)
        if error:
            line["error"] = error
        return json.dumps(line, ensure_ascii=False, default=str)


def guard(handler: logging.Handler) -> logging.Handler:
    """Put the context and redaction filters on `handler` (once); returns it."""
    if not any(isinstance(f, Redact) for f in handler.filters):
        handler.addFilter(Context())
        handler.addFilter(Redact())
    return handler


def json_handler(process: str, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    return guard(handler)


def configure(
    process: str,
    readable: logging.Handler | None = None,
    *,
    level: int = logging.INFO,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """The root logger of a process: JSON when SMSDISPATCH_LOG_FORMAT=json, else `readable` (default: the
    message alone on stderr, as Python prints a warning without any setup), redacted either way."""
    as_json = wants_json(env)
    handler = json_handler(process, stream) if as_json else guard(readable or _plain(stream))
    if as_json:  # Python's warnings too, else they are a non-JSON line on stderr
        logging.captureWarnings(True)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic's INFO lines come with every schema check (each request of `web`): its warnings only.
    for noisy in ("httpx", "httpcore", "urllib3", "werkzeug", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def _plain(stream: TextIO | None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def install_celery(process: str) -> None:
    """Celery's worker and beat: JSON lines instead of Celery's own setup when asked, otherwise Celery's
    readable lines with the context and redaction filters on its handlers."""
    from celery import signals

    if wants_json():
        configure(process)  # at once: Celery warns before it sets logging up

        def _setup(**_: Any) -> None:
            configure(process)

        signals.setup_logging.connect(_setup, weak=False)
        return

    def _guard(logger: logging.Logger | None = None, **_: Any) -> None:
        for handler in (logger or logging.getLogger()).handlers:
            guard(handler)

    signals.after_setup_logger.connect(_guard, weak=False)
    signals.after_setup_task_logger.connect(_guard, weak=False)
