"""The console speaks its own words (dispatcher/web/console/lines.py): in Persian, no page shows an English
sentence to a marketer, whatever the application layer said (a bad file, a refused check, a finding, a
control the campaign's state forbids, a page not there); in English, a line names the console's controls,
never the CLI's options. Names and values (a file, a column, a provider, a setting) may stay as written.
The console in this process over the sandbox, as tests/test_console_pages.py drives it."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from dispatcher.demo.messy import write as write_csv
from tests.support.console import csrf_of, parse
from tests.test_console_pages import as_role, console, upload  # noqa: F401 - the fixture

# Three Latin words in a row, as a sentence has them ("is not a time"), not a name ("ghasedak").
SENTENCE = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[ ,;:()]+[A-Za-z][A-Za-z'’-]*){2,}")
OPTION = re.compile(r"--[a-z][a-z-]+|smsdispatch [a-z]+")


def english_in(response) -> list[str]:  # noqa: ANN001
    """The English sentences a person sees on the page: not inside a name or value kept as written
    (`<bdi>`, `<code>`, a field's value, the message and its previews), nor the English kept behind the
    "details" disclosure, nor the switch to English."""
    soup = BeautifulSoup(response.text, "html5lib")
    for tag in soup.select(
        "script, style, bdi, code, textarea, input, option, details.english, .message, .previews, "
        "a[hreflang], a[lang], [lang='en'] a, title"
    ):
        tag.decompose()
    for link in soup.find_all("a"):
        if link.get_text(strip=True) == "English":
            link.decompose()
    text = soup.body.get_text(" ") if soup.body else ""
    return SENTENCE.findall(text)


def test_persian_pages_show_no_english_sentence_whatever_went_wrong(console):  # noqa: F811
    client, _, tmp = console
    client.get("/login?lang=fa")
    as_role(client, "sender")
    messy = write_csv(tmp / "list.csv", 30, seed=11)
    seen: dict[str, object] = {}

    bad = tmp / "bad.csv"
    bad.write_text("name,mobile\nSara,123\nAli,456\n", encoding="utf-8")
    nophone = tmp / "nophone.csv"
    nophone.write_text("a,b\n1,2\n", encoding="utf-8")
    seen["no valid row"] = upload(client, bad)
    seen["no phone column"] = upload(client, nophone)
    seen["a bad window"] = upload(client, messy, window="25:00-26:00")
    seen["a time past"] = upload(client, messy, at="2020-01-01 10:00")
    seen["an unreadable time"] = upload(client, messy, at="tomorrow-ish")
    seen["an unknown placeholder"] = upload(client, messy, message="سلام {nosuch} لغو11")
    seen["a bad budget"] = upload(client, messy, budget="fifty")
    for name, answer in seen.items():
        assert answer.status_code == 400, (name, answer.text[:300])
    checked = upload(
        client,
        messy,
        window="",
        type="promotional",
        message="{name} عزیز http://x.example/a " + "تخفیف " * 60,
    )
    draft = checked.headers["location"]
    seen["the check page, warnings"] = client.get(draft)
    first = client.post(
        f"{draft}/send", data={"csrf": csrf_of(client.get(draft).text)}, follow_redirects=False
    )
    campaign = first.headers["location"]
    refused = upload(client, messy, window="", message="{name} عزیز http://x.example/a " + "تخفیف " * 60)
    seen["a refused check (duplicate)"] = client.get(refused.headers["location"])
    seen["the campaign"] = client.get(campaign)
    csrf = csrf_of(seen["the campaign"].text)
    client.post(f"{campaign}/cancel", data={"csrf": csrf})
    seen["a control its state forbids"] = client.post(f"{campaign}/pause", data={"csrf": csrf})
    seen["the campaign, cancelled"] = client.get(campaign)
    seen["no such campaign"] = client.get("/campaigns/99999")
    seen["a bad filter"] = client.get("/campaigns", params={"since": "last tuesday-ish"})
    seen["a bad number"] = client.get("/numbers", params={"phone": "123"})
    seen["the providers"] = client.get("/providers")
    as_role(client, "viewer")
    seen["not allowed"] = client.get("/campaigns/new")
    assert seen["a control its state forbids"].status_code == 409
    assert seen["no such campaign"].status_code == 404 and seen["not allowed"].status_code == 403
    refusal = parse(seen["a refused check (duplicate)"]).select_one(".banner.danger")
    assert refusal is not None and "کمپین" in refusal.get_text(), "the duplicate refusal, in Persian"
    for name, answer in seen.items():
        parse(answer)
        found = english_in(answer)
        assert not found, f"{name}: English on a Persian page: {found}"
        assert not OPTION.findall(answer.text.split("<details")[0]), (name, OPTION.findall(answer.text))
        # each of these lines has its Persian (lines.FA_LINES): none is left to the English disclosure
        kept = [d.get_text(" ", strip=True) for d in parse(answer).select("details.english")]
        assert not kept, f"{name}: said in English behind the disclosure: {kept}"
    # the detector finds what it looks for: the same pages in English are full of sentences
    client.get("/login?lang=en")
    assert english_in(client.get("/campaigns", params={"since": "last tuesday-ish"}))


def test_english_lines_name_the_consoles_controls_not_the_clis_options(console):  # noqa: F811
    client, _, tmp = console
    client.get("/login?lang=en")
    as_role(client, "sender")
    messy = write_csv(tmp / "list.csv", 30, seed=12)
    bad_window = upload(client, messy, window="25:00-26:00")
    assert bad_window.status_code == 400
    line = parse(bad_window).select_one(".banner.danger").get_text(" ", strip=True)
    assert "«Send window (Tehran time)»" in line and "--window" not in line, line
    checked = upload(client, messy, window="", message="{name} hello")  # no opt-out token, no window
    page = parse(client.get(checked.headers["location"]))
    hints = " ".join(h.get_text(" ", strip=True) for h in page.select(".checks .hint, .checks li"))
    assert "This is a transactional message" in hints and not OPTION.search(hints), hints


def test_counts_read_as_people_count_in_each_language():
    """English: "1 message", "2 messages"; Persian: the singular noun after any number, its own digits."""
    from dispatcher.web.console.i18n import Lang, Words

    en, fa = Words(Lang.EN), Words(Lang.FA)
    assert [en.count("{n} message", "{n} messages", n) for n in (0, 1, 2)] == [
        "0 messages",
        "1 message",
        "2 messages",
    ]
    assert [en.count("{n} part", "{n} parts", n) for n in (1, 3)] == ["1 part", "3 parts"]
    assert [fa.count("{n} message", "{n} messages", n) for n in (1, 12)] == ["۱ پیام", "۱۲ پیام"]
    assert fa("each part") == "هر بخش"
