"""What goes on the wire, made cheaply: a form body encoded as requests encodes it, and a requests Session that
reads the environment's proxy settings once per host instead of at every request.

Both were measured on the send path (cProfile, CPU time, `bench/send_path.py --operation`): urllib's
`quote_plus` quotes every byte of a string that has any character to escape in a Python loop (a Persian text,
or a comma list of 100 numbers: ~0.3 ms a chunk; a table lookup per byte still ~0.1 ms, one `str.replace` of
the commas a tenth of that), and requests scans all of `os.environ` twice per request for
proxies (`get_environ_proxies`, ~0.15 ms). Same bytes, same settings, read less often.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from http import cookiejar
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.cookies import RequestsCookieJar, cookiejar_from_dict, extract_cookies_to_jar, merge_cookies
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity, get_netrc_auth

# form encoding as urllib's quote_plus: letters, digits and "_.-~" as they are, space as "+", the rest %XX
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_QUOTED = tuple(chr(b) if b in _SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in range(256))


_SAFE_BYTES = bytes(sorted(_SAFE))


def quote_plus(value: str | bytes) -> str:
    """`urllib.parse.quote_plus(value)` (UTF-8). `bytes.translate` finds the bytes to escape; when they are of a
    few kinds (a comma list of numbers or ids: one), one `str.replace` per kind, in C; otherwise (a Persian
    text: dozens) a table lookup per byte."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    unsafe = set(data.translate(None, _SAFE_BYTES))
    if len(unsafe) > 4:
        return "".join(map(_QUOTED.__getitem__, data))
    text = data.decode("latin-1")  # one character per byte
    if not unsafe:
        return text
    if 0x25 in unsafe:  # "%" first: the escapes below bring their own
        text = text.replace("%", "%25")
    for byte in unsafe.difference((0x25, 0x20)):
        text = text.replace(chr(byte), _QUOTED[byte])
    return text.replace(" ", "+") if 0x20 in unsafe else text  # last: a "+" of the value was escaped above


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
    """A requests Session that reads the environment (proxies, CA bundle, ~/.netrc) once per scheme and host, and merges
    a request's settings with its own without requests' slow mapping test (`merge_setting`).

    requests reads the environment at every request (`merge_environment_settings`); a provider's session asks
    one or two hosts, and a process's environment does not change while it sends. Anything given per request
    (proxies, verify, cert, stream) is merged as requests does, uncached."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}
        self._netrc: dict[tuple[str, str], Any] = {}
        self._urls: dict[str, str] = {}

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
            auth = self._netrc_auth(request.url)
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

    def send_direct(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout: Any
    ) -> requests.Response | None:
        """One request straight through the session's adapter, as `request(method, url, data=body,
        headers=headers, timeout=timeout, allow_redirects=False)` sends it, without requests' per-call
        preparation (a Request prepared anew, cookie jars merged, hooks, the redirect walk): the URL prepared
        once, the environment's proxies and CA bundle from `merge_environment_settings`, the adapter's own
        error mapping (the same exceptions as `request`). A redirect is returned as it came, not followed.

        None, nothing sent, when this session has cookies to send or ~/.netrc credentials for the host
        (then `request` is the way); cookies a reply sets are kept, so the next call takes `request`."""
        if self.cookies or self.auth or not self.trust_env:
            return None
        if self._netrc_auth(url):
            return None
        prepared = requests.PreparedRequest()
        prepared.method = method.upper()
        prepared.url = self._url(url)
        prepared.headers = CaseInsensitiveDict(self.headers)
        prepared.headers.update(headers)
        for header in prepared.headers.items():
            check_header_validity(header)  # requests' InvalidHeader, as `request` raises it
        prepared.headers["Content-Length"] = str(len(body))
        prepared.body = body
        prepared.hooks = {"response": []}
        settings = self.merge_environment_settings(prepared.url, {}, None, None, None)
        response = self.get_adapter(prepared.url).send(prepared, timeout=timeout, **settings)
        extract_cookies_to_jar(self.cookies, prepared, response.raw)
        response.content  # noqa: B018 - read whole, the connection back in its pool (as stream=False does)
        return response

    def _netrc_auth(self, url: str) -> Any:
        """`get_netrc_auth(url)` (~/.netrc's credentials for the host, or None), looked up once per scheme
        and host."""
        key = tuple(urlsplit(url)[:2])
        if key not in self._netrc:
            self._netrc[key] = get_netrc_auth(url)
        return self._netrc[key]

    def _url(self, url: str) -> str:
        """`url` as `PreparedRequest.prepare_url` spells it, worked out once per URL."""
        prepared = self._urls.get(url)
        if prepared is None:
            probe = requests.PreparedRequest()
            probe.prepare_url(url, None)
            prepared = self._urls[url] = probe.url
        return prepared
