"""HTTP plumbing the provider base uses: sessions without hidden retries, the reply record, and small
helpers shared by provider modules (paging, inbound rows, Retry-After)."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from campaigns.normalise import normalise_series
from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ProviderError,
    RequestError,
    TransientError,
    redact,
)
from workers.providers import metering, wire
from workers.settings import ProviderSettings
from workers.status import InboundMessage

log = logging.getLogger("workers.providers")

CONNECT_ATTEMPTS = 3  # tries of a call that fails before its request can have left us (refused, DNS, connect)


class _NotSentYet(Exception):
    """Internal: a transport failure before any byte of the request can have been acted on."""


def _never_left(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        return isinstance(reason, NewConnectionError | ConnectTimeoutError | NameResolutionError)
    return False


def make_session(pool: int = 32) -> requests.Session:
    session = wire.Session()
    # No urllib3 retries: a POST that may have been read must never be repeated behind our back.
    adapter = HTTPAdapter(
        pool_connections=4, pool_maxsize=pool, max_retries=Retry(total=0, redirect=0, raise_on_status=False)
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "smsdispatch/0.1"
    return session


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON when the body is JSON, else the text
    text: str
    headers: Mapping[str, str]

    @property
    def is_json(self) -> bool:
        return not isinstance(self.body, str)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def inbound_messages(provider: str, rows: Sequence[tuple[str, str, str, str | None]]) -> list[InboundMessage]:
    """(message id, sender, text, received at) rows -> InboundMessage, senders normalised in one pass."""
    if not rows:
        return []
    phones, _ = normalise_series(pd.Series([sender for _, sender, _, _ in rows], dtype=object))
    return [
        InboundMessage(provider, mid, None if pd.isna(phone) else str(phone), sender, text, at)
        for (mid, sender, text, at), phone in zip(rows, phones, strict=True)
    ]


def chunks(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def direct_body(data: Any, json_body: Any, headers: Mapping[str, str] | None) -> tuple[bytes, dict] | None:
    """(body, headers) of a call `wire.Session.send_direct` can make, as requests would prepare them (a bytes
    body as it is; a JSON one by `requests.compat.json.dumps(allow_nan=False)`, UTF-8, `application/json`
    unless a Content-Type is given); None for anything else (no body, text, files), which takes `request`."""
    extra = dict(headers or {})
    if isinstance(data, bytes) and data and json_body is None:
        return data, extra
    if data or json_body is None:
        return None
    try:
        text = requests.compat.json.dumps(json_body, allow_nan=False)
    except ValueError:
        return None  # requests raises its InvalidJSONError for it: the usual path does
    if not any(k.lower() == "content-type" for k in extra):
        extra["Content-Type"] = "application/json"
    return text.encode("utf-8") if isinstance(text, str) else text, extra


class HttpTransport:
    """One provider's HTTP exchanges: a Session per thread, timeouts, connect retries, and the error
    tree for transport failures and envelope-less replies (see `workers.providers.base`)."""

    name: ClassVar[str]
    settings: ProviderSettings
    _session: requests.Session | None
    _local: threading.local

    @property
    def session(self) -> requests.Session:
        if self._session is not None:
            return self._session
        session = getattr(self._local, "session", None)
        if session is None:  # one Session per thread: requests does not promise thread safety
            session = self._local.session = make_session()
        return session

    # ---- transport ----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.settings.url.rstrip('/')}/{path.lstrip('/')}"

    def call(
        self,
        method: str,
        path: str,
        *,
        sending: bool = False,
        data: Mapping[str, Any] | None = None,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One HTTP exchange. Raises only for transport failures; every reply is returned. Counted in
        the provider metrics (`workers.providers.metering`): its duration here, its outcome once read."""
        started = time.perf_counter()
        metering.begin(self.name)
        try:
            response = self._send_with_connect_retries(
                method, path, data, json_body, params, headers, sending
            )
        except _NotSentYet as exc:
            error: ProviderError = TransientError(
                f"could not reach {path}: {type(exc.__cause__).__name__}",
                provider=self.name,
                secrets=self.settings.secret_values,
            )
            metering.failed(error)
            raise error from exc.__cause__
        except requests.exceptions.RequestException as exc:
            cls = AmbiguousSendError if sending else TransientError
            error = cls(
                f"no complete reply from {path} ({type(exc).__name__}); the request may have been acted on",
                provider=self.name,
                secrets=self.settings.secret_values,
            )
            metering.failed(error)
            raise error from exc
        metering.replied()
        elapsed = (time.perf_counter() - started) * 1000
        text = response.text
        try:
            body: Any = json.loads(text) if text.strip() else ""
        except ValueError:
            body = text
        log.debug("%s %s %s -> HTTP %s in %.0f ms", self.name, method, path, response.status_code, elapsed)
        return Reply(response.status_code, body, text, response.headers)

    def _send_with_connect_retries(
        self, method, path, data, json_body, params, headers, sending=False
    ) -> requests.Response:
        if data and isinstance(data, Mapping):  # the same body requests would make, made faster (wire.py)
            data = wire.form_body(data).encode("ascii")
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        direct = direct_body(data, json_body, headers) if sending and not params else None
        url, timeout = self.url(path), (self.settings.connect_timeout, self.settings.read_timeout)
        # Up to CONNECT_ATTEMPTS tries while the request cannot have left us (`_never_left`), waiting as
        # tenacity's wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.1) did between them; a plain
        # loop, where a tenacity decorator built per call cost two Retrying objects a call.
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                session = self.session
                if direct is not None and isinstance(session, wire.Session):
                    # a send, straight through the adapter (wire.Session.send_direct): a redirect is a reply
                    response = session.send_direct(method, url, *direct, timeout)
                    if response is not None:
                        return response
                # A send never follows a redirect (a 307/308 would be re-POSTed: a second send; a 302 would
                # become a GET): the redirect is the reply, ambiguous, reconciled. Reads follow them.
                return session.request(
                    method,
                    url,
                    data=data,
                    json=json_body,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=not sending,
                )
            except requests.exceptions.RequestException as exc:
                if not _never_left(exc):
                    raise
                if attempt == CONNECT_ATTEMPTS:
                    raise _NotSentYet() from exc
                time.sleep(min(0.1 * 2 ** (attempt - 1) + random.uniform(0, 0.1), 1.0))
        raise AssertionError("unreachable")

    def http_error(self, reply: Reply, *, sending: bool, what: str = "") -> ProviderError:
        """Classify a reply that carries no provider envelope, by its HTTP status alone."""
        snippet = reply.text[:300]
        msg = f"HTTP {reply.status}{' on ' + what if what else ''}"
        kw: dict[str, Any] = dict(
            provider=self.name,
            code=f"HTTP {reply.status}",
            snippet=snippet,
            secrets=self.settings.secret_values,
        )
        if reply.status in (429, 503):  # "not processed, come back later" by definition
            return TransientError(msg, retry_after=retry_after_seconds(reply.headers), **kw)
        if reply.status >= 500:
            # 500/502/504 may come after the provider acted on a send: reconcile, never resend blind.
            return AmbiguousSendError(msg, **kw) if sending else TransientError(msg, **kw)
        if reply.status in (401, 403):
            return AccountError(msg, **kw)
        return RequestError(msg, **kw)

    def error(
        self,
        cls: type[ProviderError],
        message: str,
        *,
        code: object = None,
        reply: Reply | None = None,
        **kw: Any,
    ) -> ProviderError:
        """Build an error of the given class with this provider's name and secrets redacted."""
        return cls(
            message,
            provider=self.name,
            code=None if code is None else str(code),
            snippet=reply.text[:300] if reply is not None else "",
            secrets=self.settings.secret_values,
            **kw,
        )

    def redact(self, text: str) -> str:
        return redact(text, self.settings.secret_values)
