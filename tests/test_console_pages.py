"""The console's pages as a browser gets them, parsed (tests/support/console.py `parse`: a title, forms
with actions and CSRF tokens, no duplicate ids, the nonce on every script, no inline style): every page
for every role, in Persian and in English; the accessible names a person (and the browser test) finds
the controls by; Persian digits and Jalali dates; the check page of a messy file; a viewer sees
everything and can start nothing. No network but the sandbox on loopback; the serve loop is off, so a
sent campaign stays `running` for the controls to act on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_csv
from dispatcher.web.console.catalogue import FA
from tests.support.console import ROLES, TEXT, app_for, console_env, csrf_of, log_in, make_users, parse

TEMPLATES = Path(__file__).parent.parent / "dispatcher" / "web" / "console" / "templates"
PAGES = ["/campaigns", "/numbers", "/numbers?phone=09121234567", "/optouts", "/providers"]


@pytest.fixture
def console(tmp_path, sandbox_environ, monkeypatch):  # noqa: ANN201
    monkeypatch.chdir(tmp_path)
    settings = AppSettings.from_env(console_env(tmp_path, sandbox_environ))
    make_users(settings)
    with TestClient(app_for(settings), base_url="https://testserver") as client:
        yield client, settings, tmp_path


def as_role(client: TestClient, role: str) -> TestClient:
    for cookie in list(client.cookies.jar):  # a new login; the language chosen stays
        if cookie.name != "smsd_lang":
            client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
    assert log_in(client, role).status_code == 303
    return client


def upload(client: TestClient, path: Path, **fields: str):  # noqa: ANN201
    page = client.get("/campaigns/new")
    with path.open("rb") as fh:
        return client.post(
            "/campaigns/new",
            data={"csrf": csrf_of(page.text), "provider": "ghasedak", "message": TEXT, **fields},
            files={"file": (path.name, fh, "text/csv")},
            follow_redirects=False,
        )


def sent_campaign(client: TestClient, tmp: Path, rows: int = 40) -> int:
    checked = upload(client, write_csv(tmp / "list.csv", rows, seed=rows))
    assert checked.status_code == 303, checked.text
    draft = checked.headers["location"]
    page = client.get(draft)
    done = client.post(f"{draft}/send", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return int(done.headers["location"].rsplit("/", 1)[1])


def test_every_page_of_every_role_parses_in_both_languages(console):
    client, _, tmp = console
    campaign = sent_campaign(as_role(client, "admin"), tmp)
    for role in ROLES:
        as_role(client, role)
        for lang in ("fa", "en"):
            for page in [*PAGES, f"/campaigns/{campaign}", f"/campaigns/{campaign}/progress"]:
                answer = client.get(page, params={"lang": lang})
                assert answer.status_code == 200, (role, page, answer.text[:300])
                if page.endswith("/progress"):
                    continue  # a fragment, swapped into the campaign page
                soup = parse(answer)
                html = soup.find("html")
                assert html["lang"] == lang and html["dir"] == ("rtl" if lang == "fa" else "ltr")
        for page in ("/campaigns/new", "/users"):
            answer = client.get(page)
            allowed = (role != "viewer") if page == "/campaigns/new" else role == "admin"
            assert answer.status_code == (200 if allowed else 403), (role, page)
            parse(answer)


def test_the_login_page_parses_and_english_is_remembered(console):
    client, _, _ = console
    soup = parse(client.get("/login"))
    assert soup.find("html")["lang"] == "fa"
    english = client.get("/login?lang=en")
    assert parse(english).find("html")["lang"] == "en"
    assert client.cookies.get("smsd_lang") == "en"
    assert parse(client.get("/login")).find("html")["lang"] == "en"  # remembered without ?lang
    client.get("/login?lang=fa")
    assert parse(client.get("/login")).find("html")["lang"] == "fa"


def test_every_text_of_the_pages_has_its_persian(console):
    """Every `_("…")` literal in the templates is in the catalogue, and the dynamic ones too."""
    missing = set()
    for template in TEMPLATES.glob("*.html"):
        for match in re.finditer(r"""_\(\s*(["'])(.*?)\1\s*[,)]""", template.read_text(encoding="utf-8")):
            if match.group(2) not in FA:
                missing.add(match.group(2))
    dynamic = [*ROLES, "draft", "scheduled", "running", "paused", "completed", "cancelled", "failed"]
    dynamic += ["Pause campaign", "Resume campaign", "Cancel campaign", "MCI", "Irancell", "Rightel", "other"]
    dynamic += ["first row", "longest text", "empty placeholder", "rial", "sms", "created", "started"]
    from dispatcher.web.console.pages.compose import CHECK_TITLES, OVERRIDE_LABELS

    dynamic += [*CHECK_TITLES.values(), *OVERRIDE_LABELS.values()]
    missing |= {d for d in dynamic if d not in FA}
    assert not missing, f"no Persian for: {sorted(missing)}"


def names(soup) -> set[str]:  # noqa: ANN001
    """The accessible names of the page's buttons, links and labelled fields (text, aria-label)."""
    found = set()
    for tag in soup.find_all(["a", "button"]):
        found.add(" ".join((tag.get("aria-label") or tag.get_text()).split()))
    for label in soup.find_all("label"):
        found.add(" ".join(label.get_text().split()))
    return found


def test_english_controls_carry_the_names_people_use(console):
    client, _, tmp = console
    client.get("/login?lang=en")
    login = names(parse(client.get("/login")))
    assert {"Username", "Password", "Log in"} <= login
    as_role(client, "sender")
    campaigns = names(parse(client.get("/campaigns")))
    assert "New campaign" in campaigns
    new = names(parse(client.get("/campaigns/new")))
    assert {"Recipients file", "Provider", "Message", "Check"} <= new
    checked = upload(client, write_csv(tmp / "list.csv", 30, seed=5))
    check = names(parse(client.get(checked.headers["location"])))
    assert {"Send", "Send test", "Check"} <= check
    campaign = sent_campaign(client, tmp)
    page = names(parse(client.get(f"/campaigns/{campaign}")))
    assert {"Pause", "Cancel"} <= page and "Resume" not in page
    downloads = [n for n in page if n.startswith("Download report")]
    assert sorted(downloads) == ["Download report (CSV)", "Download report (Excel)"]
    confirm = client.get(f"/campaigns/{campaign}/confirm/pause")
    csrf = csrf_of(confirm.text)
    assert "Pause" in names(parse(confirm))
    client.post(f"/campaigns/{campaign}/pause", data={"csrf": csrf})
    paused = names(parse(client.get(f"/campaigns/{campaign}")))
    assert {"Resume", "Cancel"} <= paused and "Pause" not in paused


def test_persian_pages_show_persian_digits_jalali_dates_and_phones_left_to_right(console):
    client, settings, tmp = console
    as_role(client, "sender")
    campaign = sent_campaign(client, tmp, rows=40)
    soup = parse(client.get(f"/campaigns/{campaign}"))
    text = soup.get_text()
    assert not re.search(r"[0-9]", soup.find("dl").get_text()), "Latin digits in the Persian facts"
    created = soup.find("time")
    assert re.search(r"۱۴۰[۵-۹]/", created.get_text()), created  # a Jalali year, Persian digits
    assert created["datetime"].endswith("+03:30")
    assert "ریال" in text
    listed = parse(client.get("/campaigns"))
    cost = listed.select("tbody td.num")[-1].get_text()
    assert "٬" in cost or len(cost.split()[0]) <= 3, cost  # thousands in Persian separators
    from dispatcher.app.views import number_history

    phone = number_history(settings, "0" + next(iter(_first_phones(settings, campaign)))[3:])[0]
    history = parse(client.get("/numbers", params={"phone": "0" + phone[3:]}))
    bdi = history.find("h2").find("bdi")
    assert bdi["dir"] == "ltr" and bdi.get_text().startswith("۰۹")
    rows = history.select("tbody tr")
    assert len(rows) == 1 and f"/campaigns/{campaign}" in str(rows[0])


def _first_phones(settings: AppSettings, campaign: int) -> list[str]:
    from dispatcher.app import open_store

    store = open_store(settings, read_only=True)
    return [r["phone"] for r in store.recipients_rows(campaign)][:1]


def test_the_check_page_shows_what_to_fix_the_rejects_the_cost_and_the_start(console):
    client, _, tmp = console
    client.get("/login?lang=en")
    as_role(client, "sender")
    checked = upload(client, write_csv(tmp / "messy.csv", 200, seed=11))
    soup = parse(client.get(checked.headers["location"]))
    banner = soup.select_one(".banner.warning")
    assert banner is not None and "rows of the file will not be sent" in banner.get_text()
    rows = soup.select("section table tbody tr")
    assert rows, "no rejected row shown"
    first = [td.get_text().strip() for td in rows[0].find_all("td")]
    assert first[0].isdigit() and first[2], first  # the row number, the value, the reason
    assert soup.find("a", string=re.compile("Download the rejects file"))
    facts = {
        dt.get_text(): dd.get_text(" ", strip=True)
        for dt, dd in zip(soup.select("dl dt"), soup.select("dl dd"), strict=False)
    }
    assert facts["Cost"].endswith("rial") and facts["Starts"].startswith("now")
    assert "enough" in facts["Credit"]
    assert len(soup.select(".previews li")) >= 1
    rejects = client.get(soup.find("a", string=re.compile("Download the rejects file"))["href"])
    assert rejects.status_code == 200 and rejects.text.lstrip("\ufeff").startswith("row,value,reason")
    persian = parse(client.get(checked.headers["location"], params={"lang": "fa"}))
    table = persian.select("section table")[0]
    reasons = {tr.find_all("td")[2].get_text() for tr in table.select("tbody tr")}
    known = {"شماره موبایل نیست", "عدد نیست", "کوتاه‌تر از شماره موبایل", "بلندتر از شماره موبایل"}
    assert reasons & known or any(r.startswith("تکراری، همان ردیف ") for r in reasons), reasons
    assert not any(re.search(r"[A-Za-z]", r) for r in reasons), reasons  # every reason in Persian


def test_a_refused_check_shows_its_override_cannot_be_sent_and_checks_again_with_it(console):
    client, settings, tmp = console
    client.get("/login?lang=en")
    as_role(client, "sender")
    path = write_csv(tmp / "list.csv", 30, seed=21)
    first = sent_campaign(client, tmp, rows=30)  # the same list and text, not finished: a duplicate
    assert first
    checked = upload(client, path)
    page = client.get(checked.headers["location"])
    soup = parse(page)
    assert "cannot be sent as it is" in soup.select_one(".banner.danger").get_text()
    assert soup.find("input", {"name": "override", "value": "duplicate"})
    assert not soup.find("button", string="Send")
    draft = checked.headers["location"]
    refused = client.post(f"{draft}/send", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 422 and "duplicate" in refused.text
    again = client.post(
        f"{draft}/recheck", data={"csrf": csrf_of(page.text), "override": "duplicate"}, follow_redirects=False
    )
    soup = parse(client.get(again.headers["location"]))
    assert not soup.select_one(".banner.danger") and soup.find("button", string="Send")


def test_a_viewer_sees_everything_and_can_start_nothing(console):
    client, _, tmp = console
    campaign = sent_campaign(as_role(client, "sender"), tmp)
    sender_page = client.get(f"/campaigns/{campaign}/confirm/cancel")
    as_role(client, "viewer")
    for page in [*PAGES, f"/campaigns/{campaign}", f"/campaigns/{campaign}/report.csv"]:
        assert client.get(page).status_code == 200, page
    soup = parse(client.get(f"/campaigns/{campaign}"))
    assert not soup.find("a", href=re.compile("/confirm/")), "a viewer is offered a control"
    assert not parse(client.get("/campaigns")).find("a", href="/campaigns/new")
    assert not parse(client.get("/optouts")).find("form", {"method": "post", "action": "/optouts/add"})
    csrf = csrf_of(client.get("/campaigns").text)
    assert client.get("/campaigns/new").status_code == 403
    assert client.get(f"/campaigns/{campaign}/confirm/pause").status_code == 403
    for action in ("pause", "cancel", "resume"):
        assert client.post(f"/campaigns/{campaign}/{action}", data={"csrf": csrf}).status_code == 403
    assert client.post("/optouts/add", data={"csrf": csrf, "phones": "09121234567"}).status_code == 403
    with (tmp / "list.csv").open("rb") as fh:
        refused = client.post(
            "/campaigns/new", data={"csrf": csrf}, files={"file": ("l.csv", fh, "text/csv")}
        )
    assert refused.status_code == 403
    assert client.post("/users/add", data={"csrf": csrf, "name": "x"}).status_code == 403
    assert sender_page.status_code == 200
    assert "running" in client.get(f"/campaigns/{campaign}?lang=en").text


def test_a_scheduled_campaign_shows_its_start_and_the_cli_notice(console):
    client, _, tmp = console
    client.get("/login?lang=en")
    as_role(client, "sender")
    checked = upload(client, write_csv(tmp / "list.csv", 20, seed=8), at="tomorrow 09:00")
    page = client.get(checked.headers["location"])
    starts = parse(page).find("dt", string="Starts").find_next("dd").get_text(" ", strip=True)
    assert "09:00 +03:30" in starts and not starts.startswith("now"), starts  # resolved, with weekday
    done = client.post(f"{checked.headers['location']}/send", data={"csrf": csrf_of(page.text)})
    soup = parse(done)
    assert soup.select_one("#progress .state").get_text() == "scheduled"
    notice = soup.select_one(".banner.info").get_text(" ", strip=True)
    assert " is scheduled for " in notice and "09:00 +03:30" in notice  # the words `send` prints


def test_the_test_send_sends_the_previews_to_the_numbers_typed(console):
    client, settings, tmp = console
    as_role(client, "sender")
    checked = upload(client, write_csv(tmp / "list.csv", 20, seed=9))
    draft = checked.headers["location"]
    page = client.get(draft)
    sent = client.post(
        f"{draft}/test",
        data={"csrf": csrf_of(page.text), "phones": "۰۹۱۲۱۲۳۴۵۶۷، 09351234567"},
        follow_redirects=False,
    )
    assert "tests=" in sent.headers["location"]
    ids = [int(x) for x in sent.headers["location"].split("tests=")[1].split(",")]
    from dispatcher.app import open_store

    store = open_store(settings, read_only=True)
    for campaign in ids:
        view = store.campaign(campaign)
        assert view.test and view.name.startswith("TEST ") and view.recipients == 2
    links = parse(client.get(sent.headers["location"])).select(".banner.info a")
    assert [a["href"] for a in links] == [f"/campaigns/{i}" for i in ids]


def test_a_bad_upload_shows_the_form_again_with_the_cli_line(console):
    client, _, tmp = console
    client.get("/login?lang=en")
    as_role(client, "sender")
    bad = tmp / "bad.csv"
    bad.write_text("name,mobile\nSara,123\nAli,456\n", encoding="utf-8")
    answer = upload(client, bad, name="keep me")
    assert answer.status_code == 400
    soup = parse(answer)
    assert "no valid recipients" in soup.select_one(".banner.danger").get_text()
    assert soup.find("input", {"name": "name"})["value"] == "keep me"  # what was typed stays
    assert soup.find("textarea", {"name": "message"}).get_text() == TEXT
    listed = parse(client.get("/campaigns", params={"since": "last tuesday-ish"}))
    assert listed.select_one(".banner.danger")  # a filter that cannot be read says why


def test_an_operators_check_is_not_sent_by_the_operator_nor_as_it_is_by_a_sender(console):
    client, settings, tmp = console
    client.get("/login?lang=en")
    checked = upload(as_role(client, "operator"), write_csv(tmp / "list.csv", 20, seed=9))
    assert checked.status_code == 303, checked.text
    draft = checked.headers["location"]
    page = client.get(draft)
    assert "Send" not in names(parse(page))  # no Send button for who may not send
    refused = client.post(f"{draft}/send", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert refused.status_code == 403, refused.text[:300]
    as_role(client, "sender")
    csrf = csrf_of(client.get("/campaigns/new").text)
    other = client.post(f"{draft}/send", data={"csrf": csrf}, follow_redirects=False)
    assert other.status_code == 404, other.text[:300]  # the operator's check, not the sender's
    assert parse(client.get("/campaigns")).select("tbody tr td a") == []  # nothing was sent


def test_names_keep_their_digits_and_the_totals_count_the_failed(console):
    """A file's, a user's or a key's name is shown as it is written (its digits are not made Persian: people
    match it against their disk); the totals row adds up the failed as the rows show them, each figure
    labelled for the phone's one-card-per-row layout; the audit's `system` is said in Persian."""
    client, _, tmp = console
    as_role(client, "sender")
    checked = upload(client, write_csv(tmp / "list-2026.csv", 12, seed=6))
    draft = client.get(checked.headers["location"])
    assert "list-2026.csv" in parse(draft).find("h1").get_text()
    sent = client.post(
        f"{checked.headers['location']}/send", data={"csrf": csrf_of(draft.text)}, follow_redirects=False
    )
    assert sent.status_code == 303
    listed = parse(client.get("/campaigns"))
    foot = {td["data-label"]: td.get_text(strip=True) for td in listed.select("tfoot td[data-label]")}
    row = {td["data-label"]: td.get_text(strip=True) for td in listed.select("tbody td[data-label]")}
    assert set(foot) == {FA[x] for x in ("Recipients", "Sent", "Delivered", "Failed", "SMS parts", "Cost")}
    assert foot[FA["Failed"]] == row[FA["Failed"]] != ""
    assert all("cards" in table["class"] for table in listed.select("table"))
    from dispatcher.web.console.i18n import Lang, Words

    fa = Words(Lang.FA)
    assert fa.who("system") == FA["system"] and "sara2" in fa.who("sara2")
    assert "crm-7" in fa.who("key:crm-7") and fa.who("key:crm-7").startswith("کلید")
