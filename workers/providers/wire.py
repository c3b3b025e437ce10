"""What goes on the wire, made cheaply: a form body encoded as requests encodes it, and a requests Session that
reads the environment's proxy settings once per host instead of at every request.

Both were measured on the send path (cProfile, CPU time, `bench/send_path.py --operation`): urllib's
`quote_plus` quotes every byte of a string that has any character to escape in a Python loop (a Persian text,
or a comma list of 100 numbers: ~0.3 ms a chunk), and requests scans all of `os.environ` twice per request for
proxies (`get_environ_proxies`, ~0.15 ms). Same bytes, same settings, read less often.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

# form encoding as urllib's quote_plus: letters, digits and "_.-~" as they are, space as "+", the rest %XX
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_QUOTED = tuple(chr(b) if b in _SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in range(256))


def quote_plus(value: str | bytes) -> str:
    """`urllib.parse.quote_plus(value)` (UTF-8), with a table instead of a Python loop per byte."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return "".join(map(_QUOTED.__getitem__, data))


def form_body(data: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """The `application/x-www-form-urlencoded` body requests makes of `data` (`RequestEncodingMixin.
    _encode_params`): pairs in order, a list value repeated per item, None values left out, other values
    as `str`."""
    items = data.items() if isinstance(data, Mapping) else data
    out = []
    for key, values in items:
        if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
            values = (values,)
        for value in values:
            if value is not None:
                out.append(
                    f"{quote_plus(key)}={quote_plus(value if isinstance(value, str | bytes) else str(value))}"
                )
    return "&".join(out)


class Session(requests.Session):
    """A requests Session that reads the environment (proxies, CA bundle) once per scheme and host.

    requests reads them at every request (`merge_environment_settings`); a provider's session asks one or two
    hosts, and a process's environment does not change while it sends. Anything given per request (proxies,
    verify, cert, stream) is merged as requests does, uncached."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # noqa: ANN001, ANN201
        if proxies or stream is not None or verify is not None or cert is not None or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = tuple(urlsplit(url)[:2])
        settings = self._environment.get(key)
        if settings is None:
            settings = self._environment[key] = super().merge_environment_settings(url, {}, None, None, None)
        return {**settings, "proxies": dict(settings["proxies"])}
