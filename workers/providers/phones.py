"""How each provider spells a phone number, in one place.

The dispatcher hands clients E.164 numbers (+989121234567); providers want, and answer with, other
spellings. Sources: seeds 001, 003, 004 and the official SDK samples (providers.md §2A, §3B, §4, §5).
"""

from __future__ import annotations

import re

_IR_MOBILE = re.compile(r"^(?:\+?98|0)?(9\d{9})$")


def digits(number: object) -> str:
    return "".join(ch for ch in str(number) if ch.isdigit())


def key(number: object) -> str:
    """The last ten digits (9XXXXXXXXX), so 0912..., 98912..., +98912... and 9120000000 compare equal."""
    return digits(number)[-10:]


def national(phone: str) -> str:
    """+989121234567 -> 09121234567, the spelling of Ghasedak, Media Payamak and Amoot samples; anything
    that is not an Iranian mobile number is returned as given."""
    if (
        len(phone) == 13 and phone.startswith("+989") and phone[1:].isdigit()
    ):  # E.164, as the store keeps them
        return "0" + phone[3:]
    match = _IR_MOBILE.match(str(phone).strip())
    return "0" + match.group(1) if match else phone


def international(phone: str) -> str:
    """+989121234567, 09121234567, 9121234567 or 00989121234567 -> 989121234567 (Negin's spelling, seed 003)."""
    d = digits(phone)
    if d.startswith("0098"):
        return d[2:]
    if d.startswith("0"):
        return "98" + d[1:]
    return "98" + d if len(d) == 10 else d


def e164(number: object) -> str:
    """A provider's spelling of an Iranian mobile number -> +989121234567; anything else as given."""
    match = _IR_MOBILE.match(str(number).strip())
    return "+98" + match.group(1) if match else str(number)
