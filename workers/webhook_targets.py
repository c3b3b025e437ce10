"""Where a webhook may go: never into the server's own network (server-side request forgery).

A campaign's `callback_url` is written by whoever holds an API key, and the server POSTs to it: without a
rule, a key could make the server call its own admin ports, the cloud's metadata address or any machine of
the private network. So a receiver's URL must be `http` or `https`, carry no user name or password, and
its host must resolve only to public addresses: none loopback, private, shared (100.64/10), link-local,
multicast, reserved or unspecified (Python's `ipaddress`), IPv4-mapped IPv6 included. A host named in
SMSDISPATCH_WEBHOOK_ALLOW_HOSTS (comma-separated, as the URL writes it: `crm.internal`, `127.0.0.1`,
`::1`; `DispatchSettings.webhook_allow_hosts`) is exempt: a receiver on the operator's own network.

The rule is applied twice, since a name's addresses can change between the two (DNS rebinding): when the
URL is given (`dispatcher.app.submit.check_callback`, HTTP 400) and at every delivery
(`workers.operations.webhooks`), where the POST goes through `public_session()`, whose connections check
the address they actually connected to before a byte is sent (`RefusedPeer`). Webhooks never go through a
proxy of the environment (`trust_env` off): the address checked is the receiver's own.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

ALLOW_ENV = "SMSDISPATCH_WEBHOOK_ALLOW_HOSTS"
Resolver = Callable[[str, int], Iterable[str]]


class TargetRefused(ValueError):
    """A webhook URL the server will not call; the message is one line naming the field (`callback_url`),
    why and the fix, never the URL's credentials."""


def refused_range(address: str) -> str | None:
    """What is wrong with `address` as a receiver's (e.g. "a loopback address"), or None when public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, words in (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ):
        if test:
            return words
    return None


def refusal(host: str, address: str, why: str) -> str:
    """The one line of a refused receiver: `host` is at `address`, which is `why` (`refused_range`), and
    the fix."""
    return (
        f"callback_url's host {host} is {address}, {why}; give a public receiver's URL, or have the "
        f"server's operator list {host} in {ALLOW_ENV}"
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system's resolver, as the connection will use it)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def check_target(url: str, allowed: frozenset[str], resolver: Resolver = resolve) -> None:
    """Nothing when the server may POST to `url`; TargetRefused naming why otherwise (module doc)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(
            "callback_url carries a user name or password (user:pass@); take them out: a receiver checks "
            "the X-Smsdispatch-Signature header instead"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(
            f"callback_url {url!r} is not an http(s) URL; give one like https://crm.example/hooks/sms"
        )
    host = parts.hostname.lower()
    if host in allowed:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = list(resolver(host, port))
    except ValueError:
        raise TargetRefused(f"callback_url {url!r}: give a port between 1 and 65535") from None
    except OSError:
        raise TargetRefused(f"callback_url's host {host} does not resolve; check the name") from None
    for address in addresses:
        why = refused_range(address)
        if why is not None:
            raise TargetRefused(refusal(host, address, why))


class RefusedPeer(NewConnectionError):
    """A webhook connection reached an address that is not public (the name resolved anew since);
    `line` says so as `TargetRefused` would."""

    def __init__(self, conn: HTTPConnection, host: str, address: str, why: str) -> None:
        super().__init__(conn, f"connected to {address}, {why}")
        self.line = refusal(host, address, why)


class _PublicOnly:
    """A urllib3 connection that closes itself, before sending anything, when its peer is not public."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        address = sock.getpeername()[0]
        why = refused_range(address)
        if why is not None:
            sock.close()
            raise RefusedPeer(self, self.host, address, why)  # type: ignore[arg-type,attr-defined]
        return sock


class _PublicHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def public_session(url: str, allowed: frozenset[str]) -> requests.Session:
    """A session for one POST to `url`: its connections refuse a peer that is not public, unless the
    URL's host is in `allowed`; no proxy of the environment."""
    session = requests.Session()
    session.trust_env = False
    if (urlsplit(url).hostname or "").lower() not in allowed:
        session.mount("http://", _PublicAdapter())
        session.mount("https://", _PublicAdapter())
    return session


def refused_peer(exc: BaseException) -> RefusedPeer | None:
    """The RefusedPeer behind a requests error, if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, RefusedPeer):
            return seen
        inner = getattr(seen, "reason", None)
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        seen = inner if isinstance(inner, BaseException) else seen.__cause__ or seen.__context__
    return None
