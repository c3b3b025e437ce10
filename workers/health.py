"""Readiness: do the database, the broker and Redis answer? One short check each, for `/readyz`.

`Readiness(settings).check()` asks each service this process uses (the broker and Redis only when
configured), each within `timeout` seconds on a connection of its own (never the pool a send is
waiting for), and says which did not answer and why, with no password in the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from campaigns.db import normalise_url
from workers.errors import redact
from workers.settings import DispatchSettings


@dataclass(frozen=True)
class Check:
    """One service's answer: `ok`, and when not, why (one line, no secret)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, object]:
        """{"ready": bool, "checks": {name: "ok" | "why not"}} (the body of /readyz)."""
        return {"ready": self.ready, "checks": {c.name: "ok" if c.ok else c.detail for c in self.checks}}


def _password(url: str) -> list[str]:
    try:
        secret = urlsplit(url).password
    except ValueError:
        return []
    return [secret] if secret else []


class Readiness:
    """The checks of one process: database always, broker and Redis when the settings name them."""

    def __init__(self, settings: DispatchSettings, timeout: float = 2.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._engine: Engine | None = None
        self.secrets = [
            s
            for url in (settings.database_url, settings.broker_url, settings.redis_url)
            for s in _password(url)
        ]

    def _run(self, name: str, probe: Callable[[], None]) -> Check:
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            return Check(name, False, redact(f"{type(exc).__name__}: {first}", self.secrets))
        return Check(name, True)

    def check(self) -> Verdict:
        s = self.settings
        checks = [self._run("database", self.database)]
        if s.broker_url:
            checks.append(self._run("broker", self.broker))
        if s.redis_url and s.redis_url != s.broker_url:
            checks.append(self._run("redis", lambda: self.redis(s.redis_url)))
        return Verdict(tuple(checks))

    def database(self) -> None:
        if self._engine is None:
            url = normalise_url(self.settings.database_url)
            args = {} if url.startswith("sqlite") else {"connect_timeout": max(1, round(self.timeout))}
            self._engine = create_engine(url, poolclass=NullPool, connect_args=args)
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def broker(self) -> None:
        url = self.settings.broker_url
        if url.startswith(("redis://", "rediss://")):
            self.redis(url)
            return
        from kombu import Connection

        with Connection(url, connect_timeout=self.timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=self.timeout)

    def redis(self, url: str) -> None:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout)
        try:
            client.ping()
        finally:
            client.close()
