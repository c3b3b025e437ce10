"""Persian first, English on request: the console's language, digits, numbers, rial, times and phones.

The language is `?lang=fa|en` on any page (remembered in a cookie), else the cookie, else Persian. Pages
are written in English inside `_("…")` and the Persian catalogue (`catalogue.FA`) gives each its words;
a string missing there shows in English (tests/test_console_pages.py fails on any).

For people: Persian digits in the Persian pages, rial with thousands separators (`۱۲٬۳۴۵ ریال`), times
in Tehran with the Jalali date in Persian (jdatetime) and the Gregorian one in English, always with the
offset; phones as people write them (`0912…`) inside `<bdi dir="ltr">`, so they read left to right in a
right-to-left line.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import jdatetime
from markupsafe import Markup, escape
from starlette.requests import Request

from campaigns.windows import TEHRAN
from dispatcher.humane import is_persian, local_phone, offset_text
from dispatcher.web.console.catalogue import FA
from dispatcher.web.console.security import LANG_COOKIE

FA_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
TO_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
WEEKDAYS_FA = ("دوشنبه", "سه‌شنبه", "چهارشنبه", "پنج‌شنبه", "جمعه", "شنبه", "یکشنبه")  # Monday first


# A rejected row's reason (campaigns/normalise.py REASONS, campaigns/load): its start -> Persian words;
# what follows the start (a row number, the opt-out's own reason) is kept.
REASONS_FA = (
    ("duplicate of row ", "تکراری، همان ردیف "),
    ("duplicate", "تکراری"),
    ("empty", "خالی"),
    ("number in scientific notation", "عدد به نماد علمی، رقم‌ها از دست رفته (ستون را در اکسل متنی کنید)"),
    ("not a number", "عدد نیست"),
    ("not an Iranian number", "شماره ایران نیست"),
    ("too short", "کوتاه‌تر از شماره موبایل"),
    ("too long", "بلندتر از شماره موبایل"),
    ("not a mobile number", "شماره موبایل نیست"),
    ("opted out", "لغو عضویت"),
    ("sent recently", "به‌تازگی پیام گرفته"),
    ("cut off", "ردیف ناقص (فایل وسط آن تمام شده)"),
)


class Lang(StrEnum):
    FA = "fa"
    EN = "en"


def lang_of(request: Request) -> Lang:
    """`?lang=` first, then the remembered cookie, then Persian."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in ("fa", "en"):
            return Lang(value)
    return Lang.FA


def asked_lang(request: Request) -> Lang | None:
    """The language a `?lang=` asks to remember, if any."""
    value = request.query_params.get("lang")
    return Lang(value) if value in ("fa", "en") else None


class Words:
    """What a page needs to speak one language; templates get it as `w` and its methods as filters."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self.rtl = lang == Lang.FA

    def __call__(self, text: str, **values: object) -> str:
        """The words of `text` in this language, `{name}` filled in (numbers in this language's digits)."""
        words = FA.get(text, text) if self.rtl else text
        if values:
            words = words.format(**{k: self.value(v) for k, v in values.items()})
        return words

    def count(self, one: str, many: str, n: int, **values: object) -> str:
        """`one` or `many` as English counts `n` ("1 message", "2 messages"), `{n}` filled in; Persian says
        the noun in the singular after any number, so its catalogue gives both the same words."""
        return self(one if n == 1 else many, n=n, **values)

    def has(self, text: str | None) -> bool:
        """True when `text` reads in this language (English always; Persian when the catalogue has it)."""
        return not self.rtl or (text or "") in FA

    def value(self, v: object) -> str:
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, int | float):
            return self.number(v)
        return str(v)

    def digits(self, text: object) -> str:
        text = "" if text is None else str(text)
        return text.translate(FA_DIGITS) if self.rtl else text

    def number(self, n: float | int | None, decimals: int = 0) -> str:
        """`12,345` / `۱۲٬۳۴۵`; one decimal when asked (`۹۸٫۵`); `—` for None."""
        if n is None:
            return "—"
        text = f"{n:,.{decimals}f}" if decimals else f"{round(n):,}"
        if not self.rtl:
            return text
        return text.replace(",", "٬").replace(".", "٫").translate(FA_DIGITS)

    def percent(self, n: float | None) -> str:
        return "—" if n is None else (f"{self.number(n, 1)}٪" if self.rtl else f"{self.number(n, 1)}%")

    def rial(self, amount: float | int | None) -> str:
        if amount is None:
            return self("not known")
        return f"{self.number(amount)} {'ریال' if self.rtl else 'rial'}"

    def when(self, at: datetime | None, *, seconds: bool = False) -> Markup:
        """A `<time>`: Tehran wall clock with its offset; the Jalali date and Persian weekday in Persian."""
        if at is None:
            return Markup("—")
        local = at.astimezone(TEHRAN)
        clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
        offset = offset_text(local)
        if self.rtl:
            day = jdatetime.date.fromgregorian(date=local.date()).strftime("%Y/%m/%d")
            text = f"{WEEKDAYS_FA[local.weekday()]} {self.digits(day)}، ساعت {self.digits(clock)}"
            zone = f'<bdi dir="ltr">{self.digits(offset)}</bdi>'
        else:
            text = f"{local:%a} {local:%Y-%m-%d} {clock}"
            zone = offset
        return Markup('<time datetime="{}">{} {}</time>').format(
            local.isoformat(), text, Markup(zone) if self.rtl else zone
        )

    def phone(self, e164: str | None) -> Markup:
        """`<bdi dir="ltr">09121234567</bdi>` (Persian digits in Persian)."""
        if not e164:
            return Markup("—")
        return Markup('<bdi dir="ltr">{}</bdi>').format(self.digits(local_phone(e164)))

    def reason(self, text: str | None) -> Markup:
        """A rejected row's reason in this language: the known ones in Persian (the rest of the line,
        a row number or an opt-out's reason, kept); anything else as the loader wrote it, left to right."""
        text = text or ""
        if self.rtl:
            for start, words in REASONS_FA:
                if text.startswith(start):
                    rest = text[len(start) :]
                    if start == "number in scientific notation":
                        rest = ""
                    return Markup("{}{}").format(words, self.digits(rest) if rest[:1].isdigit() else rest)
        return Markup('<span dir="ltr" lang="en">{}</span>').format(text)

    def dir_of(self, text: str | None) -> str:
        """`rtl` for a text mostly in Persian letters (a message, a name), else `ltr`: `dir="auto"` would
        judge a message by its first letter, often a `{name}` placeholder's."""
        return "rtl" if is_persian(text or "") else "ltr"

    @property
    def sep(self) -> str:
        """Between two facts on a line: a Persian comma in Persian (a dot would read as the digit zero)."""
        return "، " if self.rtl else " · "

    def ltr(self, text: object) -> Markup:
        """A number-like id or code (`#12`, a line, `09:00-21:00`): left to right inside a right-to-left
        line, in this language's digits."""
        return Markup('<bdi dir="ltr">{}</bdi>').format(escape(self.digits(text)))

    def verbatim(self, text: object) -> Markup:
        """A name as it is written (a file, a user, a key, a key's last characters): left to right, its
        digits kept, since people match it against what their disk or their records hold."""
        return Markup('<bdi dir="ltr">{}</bdi>').format("" if text is None else str(text))

    def line(self, text: str | None) -> Markup:
        """A line of the application layer (an error, a finding, a notice, as the CLI prints it) in this
        language, naming the console's controls, not the CLI's options (dispatcher/web/console/lines.py)."""
        from dispatcher.web.console.lines import say

        return say(text, self)

    def who(self, text: str | None) -> Markup:
        """Who did something, as the audit records it: a user's name as written; `key:NAME` as "key
        NAME", `cli:USER@HOST` as "command line (USER@HOST)", `system` as the words for it."""
        text = text or ""
        if text == "system":
            return Markup(escape(self("system")))
        for prefix, words in (("key:", "key {name}"), ("cli:", "command line ({name})")):
            if text.startswith(prefix):
                before, _, after = self(words).partition("{name}")
                return Markup("{}{}{}").format(before, self.verbatim(text[len(prefix) :]), after)
        return self.verbatim(text)


def latin_digits(text: str) -> str:
    """Persian and Arabic-Indic digits typed in a form, as Latin digits."""
    return text.translate(TO_LATIN)
