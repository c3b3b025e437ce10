"""What a provider's raw code means, read from the provider modules' own code tables.

The tables live in `workers/providers/<name>.py` (sources: the seeds and providers.md sections named
there); this module only looks them up, by name and tolerantly: a table that is missing or shaped
otherwise after a refactor is skipped, so a report never breaks over it (the meaning cell stays
empty). Nothing here invents a code's meaning: a code found in no table has none.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

# Tables mapping a code to the unified delivery state (the report's meaning is that state), and how
# the meaning reads.
_STATE_TABLES = (
    ("DELIVERY", "delivery report"),
    ("REFUSED_STATUS", "refused at send"),
    ("RECIPIENT_STATUS", "refused at send"),
    ("WHOLE_BATCH", "batch report"),
)
# Tables mapping a code to an error class (None = success) or a title.
_ERROR_TABLES = ("CALL_CODES", "SEND_CODES", "DELIVERY_CALL_CODES", "READ_CODES")
_TITLE_TABLES = ("TITLE_BY_CODE",)
_ERROR_WORDS = {
    "RecipientRefusedError": "refused for this recipient",
    "AccountError": "account problem",
    "RequestError": "request refused as malformed",
    "TransientError": "temporary provider error",
    "AmbiguousSendError": "send not confirmed",
}


def _as_int(code: Any) -> int | None:
    try:
        return int(str(code).strip())
    except ValueError:
        return None


@lru_cache(maxsize=16)
def _module(provider: str) -> Any:
    try:
        return importlib.import_module(f"workers.providers.{provider}")
    except ImportError:
        return None


def _candidates(module: Any, keys: list[Any]) -> list[tuple[str, str | None]]:
    """(meaning, the recipient state it implies or None) from every table of `module` holding a key."""
    found: list[tuple[str, str | None]] = []
    for name, prefix in _STATE_TABLES:
        table = getattr(module, name, None)
        for key in keys:
            if isinstance(table, dict) and key in table:
                state = str(getattr(table[key], "value", table[key]))
                found.append((f"{prefix}: {state}", state))
                break
    for name in _TITLE_TABLES:
        table = getattr(module, name, None)
        for key in keys:
            if isinstance(table, dict) and key in table:
                found.append((str(table[key]), None))
                break
    for name in _ERROR_TABLES:
        table = getattr(module, name, None)
        for key in keys:
            if isinstance(table, dict) and key in table:
                cls = table[key]
                cls_name = "accepted" if cls is None else getattr(cls, "__name__", str(cls))
                found.append((_ERROR_WORDS.get(cls_name, cls_name), None))
                break
    return found


@lru_cache(maxsize=4096)
def code_meaning(provider: str, code: str | None, state: str | None = None) -> str:
    """The meaning of `code` for `provider`, e.g. ghasedak '27' -> 'delivery report: blacklisted';
    '' when no table of that provider has the code (or the code is empty).

    A number can mean one thing in a send reply and another in a delivery report (Ghasedak 8: a
    refused recipient at send, "sent to the operator" in a report): given the recipient's `state`,
    the meaning that implies that state wins; otherwise the delivery report's, then the others'.
    """
    if not code or not provider.isidentifier():
        return ""
    module, number = _module(provider), _as_int(code)
    if module is None:
        return ""
    found = _candidates(module, [k for k in (number, str(code).strip()) if k is not None])
    for meaning, implied in found:
        if state is not None and implied == state:
            return meaning
    return found[0][0] if found else ""
