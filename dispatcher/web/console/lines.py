"""The application layer's lines in the console's words: its own controls, and Persian.

The use cases raise and return their lines as the CLI prints them ("to send anyway: --allow-partial",
"--window '25:00': hours run 00-23 …"). A person in the console has no options and no terminal: they
have the form's fields and the check page's boxes. `say(line, words)` gives a page the line to show:

- in English, each option named as the console's control ("--allow-partial" is the box “Send even
  though the credit is not enough”), each command as the page that does it;
- in Persian, the line in Persian when one of `FA_LINES` reads it (its values kept: a file's name, a
  column, a number in Persian digits, a state in its Persian word); any other line is said in Persian as
  a problem with its English kept behind a "details" disclosure for whoever supports the marketer, so a
  Persian page shows no English sentence.

A pattern's groups are shown by their name's first letter: `n` a number (Persian digits), `v` a value as
written (left to right, digits kept), `w` a word of the catalogue (a state, a unit), `t` a line said
again by `persian`, `o` a CLI option said as its control, `r` a rejected row's reason (`Words.reason`),
`s` setting names joined in Persian.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from dispatcher.web.console.i18n import Words

# A CLI option -> the console's control (its label as the pages write it; catalogue.FA has the Persian).
CONTROLS = {
    "--allow-partial": "Send even though the credit is not enough",
    "--allow-duplicate": "Send even though the same campaign is unfinished",
    "--skip-recent": "Leave out those who got a message recently",
    "--type transactional": "This is a transactional message",
    "--type": "Type",
    "--window": "Send window (Tehran time)",
    "--at": "Start at (Tehran time)",
    "--budget": "Budget (rial)",
    "--max-parts": "At most this many SMS parts",
    "--column": "Phone column (when not found by its name)",
    "--sheet": "Sheet (of a workbook)",
    "--message": "Message",
    "--provider": "Provider",
    "--test-to": "Test numbers (comma between them)",
}
OPTION = re.compile(
    r"--type transactional|--message TEXT or --message-file FILE|(--[a-z][a-z-]*)"
    r"(?: (?:HH:MM-HH:MM|[A-Z][A-Z|_]*\b))?"
)
COMMAND = re.compile(r"`?smsdispatch (?:run|watch|status|resume) (\d+)[^`;,)]*`?|`?smsdispatch [a-z -]+`?")


def _control(m: re.Match[str], words: Words) -> str:
    text = m.group(0)
    key = "--message" if text.startswith("--message TEXT") else m.group(1) or text
    label = CONTROLS.get(key) or CONTROLS.get(key.split(" ")[0])
    return f"«{words(label)}»" if label else text


def in_controls(line: str, words: Words) -> str:
    """`line` with the CLI's options named as the console's controls, its commands as the campaign's page."""
    line = OPTION.sub(lambda m: _control(m, words), line)
    return COMMAND.sub(
        lambda m: (
            words("the page of campaign {n}", n=int(m.group(1))) if m.group(1) else words("the console")
        ),
        line,
    )


N = r"[\d,.]+"
FA_LINES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), fa)
    for p, fa in [
        # a preflight refusal as a whole, then the checks' findings and their overrides
        (r"refused by preflight check (?P<v>[\w-]+): (?P<t1>.*); to send anyway: (?P<t2>.*)",
         "بررسی پیش از ارسال آن را نپذیرفت: {t1}؛ برای ارسال با این حال: {t2}"),
        (rf"credit (?P<n1>{N}) (?P<w1>\S+) is below the (?P<n2>{N}) \S+ this campaign needs \((?P<n3>{N}) SMS parts\); it would stop part-way",
         "اعتبار {n1} {w1} از {n2} {w1} لازم این کمپین ({n3} بخش پیامک) کمتر است؛ ارسال نیمه‌کاره می‌ماند"),
        (r'the same recipients and text as campaign (?P<n1>\d+) "(?P<v1>.*)", (?P<w1>\w+)(?: \(created (?P<v2>.*)\))? and not finished; continue it with: .*',
         "همان گیرندگان و متن کمپین {n1} «{v1}» که «{w1}» است و هنوز تمام نشده؛ همان را از صفحه‌اش ادامه دهید"),
        (r'the same recipients and text as campaign (?P<n1>\d+) "(?P<v1>.*)", (?P<w1>\w+).*; its recipients would get it twice',
         "همان گیرندگان و متن کمپین {n1} «{v1}» («{w1}»)؛ گیرندگانش آن را دو بار می‌گیرند"),
        (rf"(?P<n1>{N}) recipients got a message from another campaign in the last (?P<n2>{N}) h \(.*\)",
         "{n1} گیرنده در {n2} ساعت گذشته از کمپین دیگری پیام گرفته‌اند"),
        (rf"the (?P<w1>budget|part cap) covers about (?P<n1>{N}) of (?P<n2>{N}) recipients; the campaign will pause there.*",
         "«{w1}» حدود {n1} از {n2} گیرنده را پوشش می‌دهد؛ کمپین همان‌جا متوقف می‌شود"),
        (r"promotional text without the opt-out token (?P<v1>\S+); some panels refuse it",
         "متن تبلیغاتی بدون کلمهٔ لغو {v1}؛ برخی سامانه‌ها آن را نمی‌پذیرند"),
        (rf"(?P<n1>{N}) messages carry a link \((?P<v1>.*)\); some lines refuse links",
         "{n1} پیام پیوند دارد ({v1})؛ برخی خط‌ها پیوند را نمی‌پذیرند"),
        (rf"(?P<n1>{N}) messages are longer than (?P<n2>\d+) SMS parts \(up to (?P<n3>\d+)\), each part paid for every recipient",
         "{n1} پیام از {n2} بخش پیامک بلندتر است (تا {n3})، و هر بخش برای هر گیرنده هزینه دارد"),
        (rf"(?P<v1>.+) came out empty for (?P<n1>{N}) recipients? \(first: row (?P<n2>\d+)\)",
         "{v1} برای {n1} گیرنده خالی ماند (نخستین: ردیف {n2})"),
        (r"promotional campaign with no send window; operators restrict promotional hours",
         "کمپین تبلیغاتی بدون بازه ارسال؛ اپراتورها ساعت پیام تبلیغاتی را محدود می‌کنند"),
        (r"top up the credit and send the draft again, or check the file again with (?P<o1>--allow-partial)",
         "اعتبار را افزایش دهید و دوباره ارسال کنید، یا فایل را دوباره با گزینهٔ {o1} بررسی کنید"),
        (r"(?P<o1>--allow-partial|--allow-duplicate|--skip-recent)", "گزینهٔ {o1}"),
        (r"add (?P<v1>\S+) to the text, or --type transactional",
         "{v1} را به متن بیفزایید، یا گزینهٔ «این پیام خدماتی است» را بزنید"),
        (r"--window HH:MM-HH:MM \(e\.g\. 09:00-21:00\), or --type transactional",
         "«بازه ارسال» را بنویسید (مثلاً 09:00-21:00)، یا گزینهٔ «این پیام خدماتی است» را بزنید"),
        (r"remove the link", "پیوند را از متن بردارید"),
        (r"shorten the text, or SMSDISPATCH_MAX_PARTS=\d+", "متن را کوتاه‌تر کنید"),
        (r"fill the column in the file", "ستون را در فایل پر کنید"),
        (rf"(?P<o1>--budget|--max-parts) (?P<n1>{N}) to cover them all", "{o1} را {n1} کنید تا همه را پوشش دهد"),
        # the file
        (r"(?P<v1>.+) is empty; give a file with a header row \(e\.g\. mobile\) and one recipient per row",
         "فایل {v1} خالی است؛ فایلی با یک ردیف عنوان (مثلاً mobile) و یک گیرنده در هر ردیف بدهید"),
        (r"(?P<v1>.+) is an old Excel \.xls workbook; .*",
         "فایل {v1} از نوع قدیمی اکسل (xls) است؛ آن را به‌صورت xlsx یا «CSV UTF-8» ذخیره کنید و دوباره بفرستید"),
        (r"(?P<v1>.+) is (?:UTF-16 text|neither UTF-8 nor Windows-1256 text.*); save it as 'CSV UTF-8' and try again",
         "نویسه‌های فایل {v1} خوانده نمی‌شود؛ آن را به‌صورت «CSV UTF-8» ذخیره کنید و دوباره بفرستید"),
        (r"(?P<v1>.+) is not a CSV text file \(it holds binary data\); give a \.csv or \.xlsx file",
         "فایل {v1} متن CSV نیست؛ یک فایل csv یا xlsx بدهید"),
        (r"(?P<v1>.+?)(?: line \d+ holds a NUL byte| has a quote that never closes|: rows have more cells than the header's| has a damaged).*",
         "فایل {v1} آسیب دیده است؛ آن را دوباره از اکسل به‌صورت «CSV UTF-8» ذخیره کنید"),
        (r"(?P<v1>.+) has no phone column among: (?P<v2>.+); name it with --column COLUMN",
         "فایل {v1} ستون شماره تلفن ندارد (ستون‌ها: {v2})؛ نام آن را در «ستون شماره تلفن» بنویسید"),
        (r"(?P<v1>.+) has no column '(?P<v2>.*)'; its columns are: (?P<v3>.+)",
         "فایل {v1} ستونی به نام {v2} ندارد؛ ستون‌هایش: {v3}"),
        (r"(?P<v1>.+) has no header row \(row (?P<n1>\d+) holds the number (?P<v2>\S+)\); .*",
         "فایل {v1} ردیف عنوان ندارد (در ردیف {n1} خود شماره {v2} آمده)؛ ردیفی با نام ستون‌ها، مثلاً mobile، بالای آن بگذارید"),
        (r"(?P<v1>.+)(?: has no rows under the header|: no rows under the header,) .*",
         "فایل {v1} زیر ردیف عنوان هیچ گیرنده‌ای ندارد"),
        (r"(?P<v1>.+) is not a readable \.xlsx workbook .*", "فایل {v1} کارپوشهٔ اکسل خوانایی نیست؛ آن را دوباره از اکسل ذخیره کنید"),
        (r"(?P<v1>.+) has no sheet '(?P<v2>.*)'; its sheets are: (?P<v3>.+); give --sheet NAME or NUMBER",
         "فایل {v1} برگه‌ای به نام {v2} ندارد (برگه‌ها: {v3})؛ نام یا شمارهٔ یکی را در «برگه» بنویسید"),
        (r"(?P<v1>.+) sheet '(?P<v2>.*)' is empty; .*", "برگهٔ {v2} در فایل {v1} خالی است؛ برگهٔ دیگری را در «برگه» بنویسید"),
        (r"(?P<v1>.+) is CSV text, which has no sheets; .*", "فایل {v1} متن CSV است و برگه ندارد؛ «برگه» را خالی بگذارید"),
        (rf"(?:.+: )?no valid recipients(?: \(|, )(?P<n1>{N}) rows? rejected\b.*",
         "هیچ گیرندهٔ درستی در فایل نیست ({n1} ردیف رد شد)؛ دلیل هر ردیف در فایل ردشده‌هاست"),
        # the message
        (r"the message is empty; .*", "متن پیام خالی است؛ «متن پیام» را بنویسید"),
        (r"unmatched '(?P<v1>.)' at character (?P<n1>\d+) of the message; .*",
         "آکولاد {v1} در نویسهٔ {n1} پیام جفت ندارد؛ برای خود آکولاد آن را دو بار بنویسید"),
        (r"empty placeholder \{\} at character (?P<n1>\d+) of the message; .*",
         "جای‌نگهدار خالی {{}} در نویسهٔ {n1} پیام؛ نام ستونی را میان آکولادها بنویسید"),
        (r"unknown placeholder (?P<v1>\{.*?\}); the file's columns are: (?P<v2>.+) \(write .*",
         "جای‌نگهدار {v1} ستونی در فایل ندارد؛ ستون‌های فایل: {v2}"),
        # when, the window, the budget
        (r"--at '(?P<v1>.*)' is in the past \((?P<v2>.*)\); .*",
         "«آغاز» {v1} گذشته است ({v2})؛ زمانی در آینده بنویسید، یا آن را خالی بگذارید تا همین حالا ارسال شود"),
        (r"--at '(?P<v1>.*)': (?P<v2>\d\d:\d\d) has passed today; .*",
         "«آغاز» {v1}: ساعت {v2} امروز گذشته است؛ ساعت دیرتری یا فردا را بنویسید"),
        (r"--at '(?P<v1>.*)'(?: is not a|: not a|: give the|: hours run).*",
         "«آغاز» {v1} خوانده نمی‌شود؛ تاریخ و ساعت را مثل 1405/09/10 10:00 یا «فردا 09:00» بنویسید"),
        (r"--window '(?P<v1>.*)': start and end are the same; .*",
         "«بازه ارسال» {v1}: آغاز و پایان یکی است؛ برای ارسال در هر ساعتی آن را خالی بگذارید"),
        (r"--window '(?P<v1>.*)': .*", "«بازه ارسال» {v1} خوانده نمی‌شود؛ آن را مثل 09:00-21:00 بنویسید (به وقت تهران)"),
        (r"(?P<o1>--budget|--max-parts) '(?P<v1>.*)': give a whole number .*", "{o1} {v1}: عددی درست و بیشتر از صفر بنویسید"),
        (r"--budget needs the price of an SMS part: no price known for (?P<v1>\S+): .*",
         "برای «بودجه» قیمت هر بخش پیامک {v1} لازم است و معلوم نیست؛ «حداکثر بخش پیامک» را به کار ببرید، یا از مدیر سرور بخواهید قیمت را تنظیم کند"),
        # providers
        (r"provider (?P<v1>\S+) has no credential on this server: set (?P<s1>.+) \(environment or config file\)",
         "سامانه پیامک {v1} روی این سرور تنظیم نشده است؛ از مدیر سرور بخواهید {s1} را تنظیم کند"),
        (r"(?P<v1>\S+) refused the account .*", "سامانه پیامک {v1} حساب را نپذیرفت؛ مدیر سرور کلید آن را بررسی کند"),
        (r"(?P<v1>\S+) cannot be reached at (?P<v2>\S+) .*",
         "سامانه پیامک {v1} در دسترس نیست ({v2})؛ کمی بعد دوباره امتحان کنید، یا به مدیر سرور خبر دهید"),
        (r"no balance call documented; credentials not checked", "این سامانه راهی برای دیدن اعتبار ندارد؛ کلیدها بررسی نشد"),
        # who may do what, and what is not there
        (r"(?P<v1>\S+) is a (?P<w1>\w+); this needs the (?P<w2>\w+) role or above",
         "{v1} نقش «{w1}» دارد؛ این کار نقش «{w2}» یا بالاتر می‌خواهد"),
        (r"no campaign (?P<n1>\d+)(?: in .*)?", "کمپین {n1} نیست"),
        (r"no draft (?P<n1>\d+) .*", "پیش‌نویس {n1} نیست یا مال شما نیست (پیش‌نویس پس از ۲۴ ساعت از میان می‌رود)؛ فایل را دوباره بارگذاری کنید"),
        (r"draft (?P<n1>\d+) was sent already.*", "پیش‌نویس {n1} پیش‌تر ارسال شده است"),
        (r"campaign (?P<n1>\d+) is (?P<w1>\w+); it cannot be (?P<w2>\w+)", "کمپین {n1} «{w1}» است؛ «{w2}» شدنش ممکن نیست"),
        (r"the uploaded file is no longer kept; upload it again", "فایل بارگذاری‌شده دیگر نگه داشته نشده است؛ آن را دوباره بارگذاری کنید"),
        (r"this check rejected no row", "این بررسی هیچ ردیفی را رد نکرد"),
        (r"'(?P<v1>.*)' is (?P<r1>.+); give Iranian mobile numbers such as 09121234567",
         "{v1}: {r1}؛ شماره موبایل ایرانی مثل 09121234567 بدهید"),
        (r"--test-to: give one or more phone numbers.*", "در «شماره‌های آزمایشی» یک یا چند شماره بنویسید"),
        (r"--since '(?P<v1>.*)': .*", "«ساخته‌شده از» {v1} خوانده نمی‌شود؛ تاریخی مثل 1405/09/01 یا 7d بنویسید"),
        # who sends a campaign, what it waits for (campaigns/liveness.py, campaigns/progress.py)
        (r"(?P<n1>\d+) s ago", "{n1} ثانیه پیش"),
        (r"(?P<n1>\d+) min ago", "{n1} دقیقه پیش"),
        (r"(?P<n1>\d+) h ago", "{n1} ساعت پیش"),
        (r"sending in pid (?P<v1>\d+) on (?P<v2>\S+), seen (?P<t1>.+)", "در حال ارسال، فرایند {v1} روی {v2}، آخرین نشانه {t1}"),
        (r"polling delivery in pid (?P<v1>\d+) on (?P<v2>\S+), seen (?P<t1>.+)",
         "در حال گرفتن گزارش تحویل، فرایند {v1} روی {v2}، آخرین نشانه {t1}"),
        (r"served by `smsdispatch serve`, pid (?P<v1>\d+) on (?P<v2>\S+), seen (?P<t1>.+)",
         "سرویس ارسال (serve)، فرایند {v1} روی {v2}، آخرین نشانه {t1}"),
        (r"waiting in pid (?P<v1>\d+) on (?P<v2>\S+) to start it at its time, seen (?P<t1>.+)",
         "فرایند {v1} روی {v2} منتظر است تا آن را سر وقتش آغاز کند، آخرین نشانه {t1}"),
        (r"nothing will start it at its time.*", "هیچ فرایندی آن را سر وقتش آغاز نمی‌کند؛ به مدیر سرور خبر دهید"),
        (r"nothing will send it when its window opens at (?P<v1>.+?); .*",
         "وقتی بازه ارسال ({v1}) باز شود هیچ فرایندی آن را ارسال نمی‌کند؛ به مدیر سرور خبر دهید"),
        (r"nothing has been sending this campaign since (?P<v1>.+?); .*",
         "از {v1} هیچ فرایندی این کمپین را ارسال نکرده است؛ به مدیر سرور خبر دهید"),
        (r"nothing is sending this campaign(?:; .*)?", "هیچ فرایندی این کمپین را ارسال نمی‌کند؛ به مدیر سرور خبر دهید"),
        (r"start `smsdispatch serve` or run `smsdispatch poll --until-done` to collect its delivery reports",
         "کسی گزارش‌های تحویل را جمع نمی‌کند؛ به مدیر سرور خبر دهید"),
        (r"no worker has taken a chunk for (?P<v1>.+); are workers running\?",
         "{v1} است که هیچ کارگری بسته‌ای برنداشته؛ به مدیر سرور خبر دهید"),
        (r"scheduled: starts at (?P<v1>.+)", "زمان‌بندی‌شده: آغاز در {v1}"),
        (r"paused: (?P<t1>.+)", "متوقف: {t1}"),
        (r"paused by the user", "توقف به دست کاربر"),
        (r"waiting for the window (?P<v1>\S+), opens at (?P<v2>.+)", "در انتظار بازه ارسال {v1}، که در {v2} باز می‌شود"),
        (r"(?P<n1>\d+) chunk\(s\) backing off after transient errors.*",
         "{n1} بسته پس از خطای گذرا کمی بعد دوباره ارسال می‌شود"),
        (r"sends that could not be confirmed are being checked with the provider",
         "ارسال‌هایی که تأیید نشدند با سامانه پیامک بررسی می‌شوند"),
        (r"campaign (?P<n1>\d+) is scheduled for (?P<v1>.+?); .*", "کمپین {n1} برای {v1} زمان‌بندی شده است"),
        (r"campaign (?P<n1>\d+) is waiting for the window (?P<v1>\S+), opens at (?P<v2>.+?); .*",
         "کمپین {n1} در انتظار بازه ارسال {v1} است، که در {v2} باز می‌شود"),
        (r"daily cap of (?P<v1>.+?) reached: (?P<n1>[\d,]+) of (?P<n2>[\d,]+) (?P<w1>rial|parts)",
         "سقف روزانهٔ {v1} پر شد: {n1} از {n2} {w1}"),
        # the history's details and the reasons of a pause
        (rf"(?P<n1>{N}) recipients via (?P<v1>\S+)", "{n1} گیرنده با {v1}"),
        (rf"(?P<w1>budget|part cap) reached: (?P<n1>{N}) of (?P<n2>{N}) (?P<w2>rial|parts)", "«{w1}» پر شد: {n1} از {n2} {w2}"),
    ]
]  # fmt: skip


def say(line: str | None, words: Words) -> Markup:
    """The line for a page in `words`' language (see the module doc)."""
    line = " ".join((line or "").split())
    if not line:
        return Markup("")
    if not words.rtl:
        return Markup('<span lang="en">{}</span>').format(in_controls(line, words))
    said = persian(line, words)
    if said is not None:
        return said
    return Markup(
        '{} <details class="english"><summary>{}</summary><span dir="ltr" lang="en">{}</span></details>'
    ).format(words("The server said this in English."), words("Details"), line)


def persian(line: str, words: Words) -> Markup | None:
    """`line` in Persian when a pattern of `FA_LINES` reads it whole; None otherwise."""
    for pattern, template in FA_LINES:
        m = pattern.fullmatch(line)
        if m is None:
            continue
        values = {}
        for name, value in m.groupdict().items():
            values[name] = _value(name, value or "", words)
        if any(v is None for v in values.values()):
            continue  # a part this pattern cannot say: let a later one (or the disclosure) say it
        return Markup(escape(template)).format(**values)
    return None


def _value(name: str, value: str, words: Words) -> Markup | str | None:
    kind = name[0]
    if kind == "n":
        return words.digits(value.replace(",", "٬") if words.rtl else value)
    if kind == "w":
        return words(value) if words.has(value) else words.verbatim(value)
    if kind == "t":
        return persian(value, words)
    if kind == "o":
        label = CONTROLS.get(value)
        return f"«{words(label)}»" if label else None
    if kind == "r":
        return words.reason(value)
    if kind == "s":
        names = re.findall(r"SMSDISPATCH_\w+", value)
        joiner = "، یا هر دو " if ", or both" in value else " و "
        head = words.verbatim(names[0]) if names else ""
        rest = Markup(" و ").join(words.verbatim(n) for n in names[1:])
        return Markup("{}{}{}").format(head, joiner if rest else "", rest)
    return words.verbatim(value)
