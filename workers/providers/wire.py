"""What goes on the wire, made cheaply: a form body encoded as requests encodes it, and a requests Session that
reads the environment's proxy settings once per host instead of at every request.

Both were measured on the send path (cProfile, CPU time, `bench/send_path.py --operation`): urllib's
`quote_plus` quotes every byte of a string that has any character to escape in a Python loop (a Persian text,
or a comma list of 100 numbers: ~0.3 ms a chunk), and requests scans all of `os.environ` twice per request for
proxies (`get_environ_proxies`, ~0.15 ms). Same bytes, same settings, read less often.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from http import cookiejar
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.cookies import RequestsCookieJar, cookiejar_from_dict, merge_cookies
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import get_netrc_auth

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


def merge_setting(request_setting: Any, session_setting: Any, dict_class: type = OrderedDict) -> Any:
    """`requests.sessions.merge_setting`, with `list(m.items())` where requests calls `to_key_val_list(m)`
    for a mapping (what that returns for one). requests 2.34 asks there `isinstance(value, SupportsItems)`, a
    runtime-checkable Protocol, which Python 3.11 answers by walking the protocol's attributes at every call:
    py-spy found a quarter of a Celery worker's CPU (with the GIL held) in it, four calls a request."""
    if session_setting is None:
        return request_setting
    if request_setting is None:
        return session_setting
    if not (isinstance(session_setting, Mapping) and isinstance(request_setting, Mapping)):
        return request_setting
    merged = dict_class(list(session_setting.items()))
    merged.update(list(request_setting.items()))
    for key in [k for k, v in merged.items() if v is None]:
        del merged[key]
    return merged


class Session(requests.Session):
    """A requests Session that reads the environment (proxies, CA bundle) once per scheme and host, and merges
    a request's settings with its own without requests' slow mapping test (`merge_setting`).

    requests reads the environment at every request (`merge_environment_settings`); a provider's session asks
    one or two hosts, and a process's environment does not change while it sends. Anything given per request
    (proxies, verify, cert, stream) is merged as requests does, uncached."""

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

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """`requests.Session.prepare_request` (2.34), with this module's `merge_setting`; no query parameters
        are passed on as none rather than as an empty mapping (the same URL, without requests' slow test)."""
        cookies = request.cookies or {}
        if not isinstance(cookies, cookiejar.CookieJar):
            cookies = cookiejar_from_dict(cookies)
        merged_cookies = merge_cookies(merge_cookies(RequestsCookieJar(), self.cookies), cookies)
        auth = request.auth
        if self.trust_env and not auth and not self.auth:
            auth = get_netrc_auth(request.url)
        params = merge_setting(request.params, self.params)
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=str(request.method).upper(),
            url=request.url,
            files=request.files,
            data=request.data,
            json=request.json,
            headers=merge_setting(request.headers, self.headers, dict_class=CaseInsensitiveDict),
            params=params or None,
            auth=merge_setting(auth, self.auth),
            cookies=merged_cookies,
            hooks=merge_hooks(request.hooks, self.hooks),
        )
        return prepared
