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

# Tables mapping a code to the unified delivery state (the report's meaning is that state).
_STATE_TABLES = ("DELIVERY", "REFUSED_STATUS", "RECIPIENT_STATUS", "WHOLE_BATCH")
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


@lru_cache(maxsize=4096)
def code_meaning(provider: str, code: str | None) -> str:
    """The meaning of `code` for `provider`, e.g. ghasedak '27' -> 'delivery report: blacklisted';
    '' when no table of that provider has the code (or the code is empty)."""
    if not code or not provider.isidentifier():
        return ""
    module, number = _module(provider), _as_int(code)
    if module is None:
        return ""
    keys = [k for k in (number, str(code).strip()) if k is not None]
    for name in _STATE_TABLES:
        table = getattr(module, name, None)
        for key in keys:
            if isinstance(table, dict) and key in table:
                return f"delivery report: {getattr(table[key], 'value', table[key])}"
    for name in _TITLE_TABLES:
        table = getattr(module, name, None)
        for key in keys:
            if isinstance(table, dict) and key in table:
                return str(table[key])
    for name in _ERROR_TABLES:
        table = getattr(module, name, None)
        for key in keys:
            if isinstance(table, dict) and key in table:
                cls = table[key]
                if cls is None:
                    return "accepted"
                cls_name = getattr(cls, "__name__", str(cls))
                return _ERROR_WORDS.get(cls_name, cls_name)
    return ""
