"""The error tree of provider calls, in the manner of httpx's `_exceptions.py`.

    ProviderError                 a call-level failure; carries provider, code and a redacted snippet
    ├── TransientError            retry later with backoff (may carry retry_after seconds)
    ├── AmbiguousSendError        the request may have been acted on: reconcile, never resend blind
    ├── AccountError              credentials, credit, blocked account or line: pause the campaign
    └── RequestError              this request is wrong and will stay wrong: fail it
        └── RecipientRefusedError a number in a multi-number call was refused, the reply does not say which:
                                  split the chunk and send again (nothing of it was accepted)

    ConfigurationError            outside the tree: our settings are wrong (missing credential, bad URL)

Per-recipient refusals are values (`SendResult` with `SendOutcome.REFUSED`), never exceptions.
No exception here ever holds a credential: `redact` runs on every snippet before it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SNIPPET = 300


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        code: str | int | None = None,
        snippet: str = "",
        secrets: Iterable[str] = (),
    ) -> None:
        self.provider = provider
        self.code = None if code is None else str(code)
        self.snippet = redact(snippet, secrets)[:_SNIPPET]
        self.message = redact(message, secrets)
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.provider} " if self.provider else ""
        code = f"code {self.code}: " if self.code is not None else ""
        return f"{where}{code}{self.message}"


class TransientError(ProviderError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class AmbiguousSendError(ProviderError):
    """The request left us and we do not know whether the provider acted on it."""


class AccountError(ProviderError):
    """Auth, credit, blocked account or line: every further call on this account fails too."""


class RequestError(ProviderError):
    """The request itself is wrong (fields, sizes, content); retrying it unchanged cannot help."""


class RecipientRefusedError(RequestError):
    """A call-level per-recipient code (invalid, filtered, blacklisted) on a call with several numbers."""


class ConfigurationError(Exception):
    """Our own settings are wrong or missing; the message names the setting and the fix."""


class MissingCredential(ConfigurationError):
    """A provider has no credential in this process's settings: a configuration problem of the provider a
    request chose (the API's 400, the CLI's exit 2), never the provider's. The one line names the provider
    and the variables to set, never a value. `provider`: its name; `variables`: the names to set
    (alternatives joined by the message's words)."""

    def __init__(self, provider: str, variables: tuple[str, ...], how: str) -> None:
        super().__init__(
            f"provider {provider} has no credential on this server: set {how} (environment or config file)"
        )
        self.provider, self.variables = provider, variables


_KEYLIKE = re.compile(
    r"(?i)((?:api[_-]?key|apikey|token|password|passwd|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,}]+)"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secret values and anything that looks like `key=value` for a credential."""
    if not text:
        return ""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub(r"\1***", text)
