"""Counting provider calls: one HTTP exchange = one `smsdispatch_provider_requests_total` and one duration.

An exchange's outcome is known only after the reply was read (`ProviderClient.read_reply` classifies
it, a parse hook may still raise), so each thread keeps its exchange open until the next one starts
or the provider method that made it returns; the method (`send`, `status`, `balance`, `reconcile`,
`inbox`, `contacts`) is that of the outermost public method running on the thread, which
`ProviderClient.__init_subclass__` wraps with `metered`. The outcome is `ok` or the kind of the error
(`workers.metrics.error_kind`); each failed exchange also counts one `smsdispatch_provider_errors_total`,
and so does an error raised before any exchange (a batch of the wrong size).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from workers import metrics
from workers.errors import ProviderError

F = TypeVar("F", bound=Callable[..., Any])

# Public methods of a client (or phonebook) -> the `method` label of the exchanges they make.
METHODS: dict[str, str] = {
    "send": "send",
    "status": "status",
    "balance": "balance",
    "reconcile": "reconcile",
    "inbox": "inbox",
    "add": "contacts",
    "groups": "contacts",
    "create_group": "contacts",
    "rename_group": "contacts",
    "remove_group": "contacts",
    "listing": "contacts",
}
OK = "ok"


@dataclass
class _Exchange:
    provider: str
    method: str
    started: float
    duration: float | None = None
    outcome: str = OK
    error: BaseException | None = None


class _State(threading.local):
    def __init__(self) -> None:
        self.methods: list[str] = []
        self.open: _Exchange | None = None
        self.last_error: BaseException | None = None


_state = _State()


def _close() -> None:
    ex, _state.open = _state.open, None
    if ex is None:
        return
    duration = ex.duration if ex.duration is not None else time.perf_counter() - ex.started
    metrics.PROVIDER_DURATION.labels(ex.provider, ex.method).observe(duration)
    metrics.PROVIDER_REQUESTS.labels(ex.provider, ex.method, ex.outcome).inc()
    if ex.outcome != OK:
        metrics.PROVIDER_ERRORS.labels(ex.provider, ex.outcome).inc()


def begin(provider: str) -> None:
    """An HTTP exchange with `provider` starts on this thread (the previous one, if open, is counted)."""
    _close()
    method = _state.methods[0] if _state.methods else "other"
    _state.open = _Exchange(provider, method, time.perf_counter())


def replied() -> None:
    """The exchange's reply is in: its duration stops here (reading the reply is not the provider's time)."""
    ex = _state.open
    if ex is not None and ex.duration is None:
        ex.duration = time.perf_counter() - ex.started


def mark(exc: BaseException) -> None:
    """The open exchange failed with `exc` (its outcome becomes the error's kind)."""
    ex = _state.open
    _state.last_error = exc
    if ex is not None:
        ex.outcome, ex.error = metrics.error_kind(exc), exc


def failed(exc: BaseException) -> None:
    """The exchange got no reply (a transport failure): counted at once with the error's kind."""
    replied()
    mark(exc)
    _close()


@contextmanager
def _scope(method: str, provider: str) -> Iterator[None]:
    outermost = not _state.methods
    _state.methods.append(method)
    try:
        yield
    except ProviderError as exc:
        if exc is not _state.last_error:
            if _state.open is not None:
                mark(exc)  # a parse hook refused a reply the envelope called a success
            else:
                _state.last_error = exc
                metrics.PROVIDER_ERRORS.labels(provider, metrics.error_kind(exc)).inc()
        raise
    finally:
        _state.methods.pop()
        if outermost:
            _close()
            _state.last_error = None


def metered(method: str, fn: F) -> F:
    """`fn` (a client method) with its exchanges labelled `method` and counted when it returns."""
    if getattr(fn, "__metered__", False):
        return fn
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(self: Any, *args: Any, **kw: Any) -> Iterator[Any]:
            it = fn(self, *args, **kw)
            while True:
                with _scope(method, self.name):
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                yield item

        steps.__metered__ = True  # type: ignore[attr-defined]
        return steps  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kw: Any) -> Any:
        with _scope(method, self.name):
            return fn(self, *args, **kw)

    call.__metered__ = True  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


def meter_class(cls: type) -> None:
    """Wrap the public provider methods `cls` itself defines (see METHODS) with `metered`."""
    for name, method in METHODS.items():
        fn = cls.__dict__.get(name)
        if callable(fn):
            setattr(cls, name, metered(method, fn))
