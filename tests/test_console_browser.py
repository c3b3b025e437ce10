"""A marketer's whole path in a real browser: Playwright's Python package driving Debian's Chromium
(`/usr/bin/chromium`; .ci/run installs it; never `playwright install`). In Persian from an Excel file and
in English from a CSV: log in, upload the messy list, check, see the rejects and the cost, send, watch the
progress to the end (live, without reloading) with a pause and a resume on the way, download the report.
The sandbox's ledger shows every number once. Any Content-Security-Policy violation, or any other error
in the browser's console, fails the test. Screenshots of every page at a laptop width (1366) and a phone
width (390) go to $SMSDISPATCH_SCREENSHOTS (docs/screenshots/ holds a set) or the test's folder; at the
phone width no page may scroll sideways.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pytest

from dispatcher.app import open_store
from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_csv
from dispatcher.demo.messy import write_xlsx
from dispatcher.web.console.catalogue import FA
from tests.support.console import CHROMIUM, CHROMIUM_ARGS, PASSWORD, TEXT, Served, console_env, make_users
from tests.support.services import IN_CI
from tests.test_console_words import english_in

pytestmark = pytest.mark.slow
FINAL = {"delivered", "undelivered", "failed", "blacklisted", "expired", "rejected"}
LAPTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
# What a box hides sideways (a table wider than its scroll box, a cell wider than its table), as
# "selector: content width > box width"; the page itself may not scroll sideways either.
HIDDEN_SIDEWAYS = """
[...document.querySelectorAll('.scroll, table, td, th, .card, main')]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => `${e.tagName.toLowerCase()}.${e.className}: ${e.scrollWidth} > ${e.clientWidth}`)
"""


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield found
        found.close()


@pytest.fixture
def console(tmp_path, sandbox, sandbox_environ, monkeypatch):  # noqa: ANN201
    monkeypatch.chdir(tmp_path)
    env = {
        **console_env(tmp_path, sandbox_environ),
        "SMSDISPATCH_GHASEDAK_BATCH": "10",  # slow enough to pause on the way: 10 numbers a chunk,
        "SMSDISPATCH_GHASEDAK_RATE": "12/s",  # 12 SMS parts a second
    }
    settings = AppSettings.from_env(env)
    make_users(settings)
    with Served(settings) as served:
        yield served, settings, sandbox


class Shots:
    """Screenshots of each page at both widths, named `NN-lang-page-width.png`."""

    def __init__(self, folder: Path, lang: str) -> None:
        self.folder, self.lang, self.n = folder, lang, 0
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, page, name: str) -> None:  # noqa: ANN001
        self.n += 1
        for size in (LAPTOP, PHONE):
            page.set_viewport_size(size)
            page.wait_for_timeout(150)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= size["width"], f"{name} scrolls sideways at {size['width']} px ({wide} px wide)"
            if size is PHONE:  # nor does anything inside: no table cut off in its scroll box
                hidden = page.evaluate(HIDDEN_SIDEWAYS)
                assert not hidden, f"{name} at {size['width']} px hides sideways: {hidden}"
            if self.lang == "fa" and size is LAPTOP:  # what the marketer reads: Persian only
                english = english_in(SimpleNamespace(text=page.content()))
                assert not english, f"{name}: English on a Persian page: {english}"
            path = self.folder / f"{self.lang}-{self.n:02d}-{name}-{size['width']}.png"
            page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(LAPTOP)


def shots_folder(tmp_path: Path) -> Path:
    return Path(os.environ.get("SMSDISPATCH_SCREENSHOTS") or tmp_path / "screenshots")


def watch_console(page) -> list[str]:  # noqa: ANN001
    """Every error the browser logs (a CSP violation is one), and every uncaught script error."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


def walk(browser, console, tmp_path: Path, lang: str, recipients_file: Path) -> None:  # noqa: ANN001, C901
    served, settings, sandbox = console
    from playwright.sync_api import expect

    def t(text: str) -> str:
        return FA[text] if lang == "fa" else text

    context = browser.new_context(
        locale="fa-IR" if lang == "fa" else "en-US",
        timezone_id="Asia/Tehran",
        viewport=LAPTOP,
        accept_downloads=True,
    )
    page = context.new_page()
    problems = watch_console(page)
    shots = Shots(shots_folder(tmp_path), lang)

    page.goto(f"{served.url}/login" + ("?lang=en" if lang == "en" else ""))
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "fa" else "ltr")
    shots.take(page, "login")
    page.get_by_label(t("Username")).fill("sender")
    page.get_by_label(t("Password")).fill(PASSWORD)
    page.get_by_role("button", name=t("Log in")).click()
    expect(page.get_by_role("heading", name=t("Campaigns"))).to_be_visible()

    page.get_by_role("link", name=t("New campaign")).first.click()
    page.get_by_label(t("Recipients file")).set_input_files(str(recipients_file))
    page.get_by_label(t("Provider")).select_option("ghasedak")
    page.get_by_label(t("Message"), exact=True).fill(TEXT)
    expect(page.locator("#counter")).to_contain_text("UCS-2")  # the live part counter
    page.get_by_label(t("Campaign name") if lang == "en" else FA["Campaign name"]).fill(f"walk {lang}")
    # the Jalali date picker opens on the start field (and adds nothing the CSP refuses); then "now"
    page.locator("details summary").click()
    page.get_by_label(t("Start at (Tehran time)")).click()
    expect(page.locator("jdp-container")).to_be_visible()
    shots.take(page, "new")
    page.keyboard.press("Escape")
    page.get_by_label(t("Start at (Tehran time)")).fill("")
    page.get_by_label(t("Message"), exact=True).click()
    page.get_by_role("button", name=t("Check"), exact=True).click()

    # the check page: the rejects and the cost before anything is sent
    expect(page.locator(".banner.warning")).to_be_visible()
    rejected_rows = page.locator("section table tbody tr")
    assert rejected_rows.count() > 0
    assert ("ریال" if lang == "fa" else "rial") in page.locator("dl.facts").inner_text()
    shots.take(page, "check")
    page.get_by_role("button", name=t("Send"), exact=True).click()

    # the campaign: pause on the way, resume, then live to the end
    expect(page.locator("#progress .state")).to_have_text(t("running"))
    campaign = int(page.url.rsplit("/", 1)[1])
    shots.take(page, "campaign-running")
    page.get_by_role("link", name=t("Pause"), exact=True).click()
    shots.take(page, "confirm-pause")
    page.get_by_role("button", name=t("Pause"), exact=True).click()
    expect(page.locator("#progress .state")).to_have_text(t("paused"))
    store = open_store(settings, read_only=True)
    assert store.campaign(campaign).counts.get("pending", 0) > 0, "it finished before the pause"
    shots.take(page, "campaign-paused")
    page.get_by_role("link", name=t("Resume"), exact=True).click()
    page.get_by_role("button", name=t("Resume"), exact=True).click()
    expect(page.locator("#progress .state")).to_have_text(t("running"))
    before = page.evaluate("performance.getEntriesByType('navigation').length && performance.timeOrigin")
    expect(page.locator("#progress .state")).to_have_text(t("completed"), timeout=120_000)
    assert page.evaluate("performance.timeOrigin") == before, "the page reloaded instead of updating live"
    expect(page.locator("#history")).to_contain_text(t("completed"))  # the history follows, live too
    shots.take(page, "campaign-completed")

    # the report, in both formats
    with page.expect_download() as got:
        page.get_by_role("link", name=f"{t('Download report')} (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text(encoding="utf-8-sig"))))
    view = store.campaign(campaign)
    assert len(rows) == view.recipients and {r["state"] for r in rows} <= FINAL
    assert Counter(r["state"] for r in rows) == Counter({k: v for k, v in view.counts.items() if v})
    with page.expect_download() as got:
        page.get_by_role("link", name=f"{t('Download report')} (Excel)").click()
    assert got.value.suggested_filename == f"campaign-{campaign}.xlsx"
    got.value.save_as(tmp_path / f"report-{lang}.xlsx")
    book = openpyxl.load_workbook(tmp_path / f"report-{lang}.xlsx", read_only=True)
    assert book.sheetnames[:2] == ["Summary", "Recipients"]

    # the sandbox's ledger: every number of the campaign once, and nothing else
    recipients = {r["phone"][-10:]: r for r in store.recipients_rows(campaign)}
    counts = Counter(m.phone[-10:] for m in sandbox.state.accepted("ghasedak"))
    assert set(counts.values()) == {1}, "a number was sent twice"
    assert set(counts) <= set(recipients), "the sandbox got a number that is no recipient"
    went_out = {p for p, r in recipients.items() if r["state"] in ("delivered", "undelivered", "expired")}
    assert went_out <= set(counts), "a recipient reported sent that the provider never got"
    phones = {r["phone"] for r in recipients.values()}

    # the other pages, looked at too
    page.get_by_role("link", name=t("Campaigns"), exact=True).click()
    expect(page.locator("tbody tr")).to_have_count(1)
    shots.take(page, "campaigns")
    first = sorted(phones)[0]
    page.goto(f"{served.url}/numbers?phone=0{first[3:]}")
    expect(page.locator("tbody tr")).to_have_count(1)
    shots.take(page, "numbers")
    for name in ("optouts", "providers"):
        page.goto(f"{served.url}/{name}")
        shots.take(page, name)
    context.close()
    assert not problems, "the browser's console logged: " + " | ".join(problems)


def test_a_marketer_sends_an_excel_file_in_persian_to_the_end(browser, console, tmp_path):
    walk(browser, console, tmp_path, "fa", write_xlsx(tmp_path / "مشتریان.xlsx", 160, seed=1405))


def test_a_marketer_sends_a_csv_in_english_to_the_end(browser, console, tmp_path):
    walk(browser, console, tmp_path, "en", write_csv(tmp_path / "customers.csv", 160, seed=99))


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_a_marketer_whose_credit_ran_out_since_the_check_sees_why_on_the_check_page(
    browser, console, tmp_path, lang
):
    """The check passed; other campaigns spent the credit before Send. The check page comes back with the
    refusal and what to do (top up, or check again allowing a partial send); nothing is stored."""
    served, settings, sandbox = console

    def t(text: str) -> str:
        return FA[text] if lang == "fa" else text

    context = browser.new_context(locale="fa-IR" if lang == "fa" else "en-US", viewport=LAPTOP)
    page = context.new_page()
    problems = watch_console(page)
    shots = Shots(shots_folder(tmp_path), f"{lang}-credit")
    page.goto(f"{served.url}/login" + ("?lang=en" if lang == "en" else ""))
    page.get_by_label(t("Username")).fill("sender")
    page.get_by_label(t("Password")).fill(PASSWORD)
    page.get_by_role("button", name=t("Log in")).click()
    sandbox.state.credit["ghasedak"] = 1_000  # enough at the check
    page.goto(f"{served.url}/campaigns/new")
    page.get_by_label(t("Recipients file")).set_input_files(str(write_csv(tmp_path / "list.csv", 20, seed=7)))
    page.get_by_label(t("Provider")).select_option("ghasedak")
    page.get_by_label(t("Message"), exact=True).fill(TEXT)
    page.get_by_role("button", name=t("Check"), exact=True).click()
    send = page.get_by_role("button", name=t("Send"), exact=True)
    send.wait_for()
    sandbox.state.credit["ghasedak"] = 1  # spent elsewhere meanwhile
    send.click()
    refusal = page.locator(".banner.danger")
    refusal.wait_for()
    shots.take(page, "check-refused")
    assert ("اعتبار" if lang == "fa" else "credit") in refusal.inner_text()
    assert open_store(settings, read_only=True).campaigns() == []
    facts = page.locator("dl.facts").inner_text()
    assert ("۱۵۵" if lang == "fa" else "155 rial") in facts, facts  # the credit just read, not the check's
    context.close()
    refused = "the server responded with a status of 422"  # the page answered as a refusal: not a fault
    problems = [p for p in problems if refused not in p]
    assert not problems, "the browser's console logged: " + " | ".join(problems)


def test_an_admin_sees_users_and_keys_at_both_widths(browser, console, tmp_path):
    served, _, _ = console
    context = browser.new_context(locale="fa-IR", timezone_id="Asia/Tehran", viewport=LAPTOP)
    page = context.new_page()
    problems = watch_console(page)
    shots = Shots(shots_folder(tmp_path), "fa-admin")
    page.goto(f"{served.url}/login")
    page.get_by_label(FA["Username"]).fill("admin")
    page.get_by_label(FA["Password"]).fill(PASSWORD)
    page.get_by_role("button", name=FA["Log in"]).click()
    page.goto(f"{served.url}/users")
    shots.take(page, "users")
    page.get_by_label(FA["Name"], exact=True).fill("crm")
    page.get_by_role("button", name=FA["Create key"]).click()
    assert page.locator("code.secret").first.inner_text().startswith("smsd_")
    shots.take(page, "new-key")
    context.close()
    assert not problems, "the browser's console logged: " + " | ".join(problems)


def test_the_api_docs_page_renders_and_authorizes_with_a_bearer_key(browser, console, tmp_path):
    """A developer's first stop: /api/v1/docs draws every operation (FastAPI writes OpenAPI 3.1, which
    only Swagger UI 5 reads; 4.x showed "Unable to render this definition") and offers Authorize for
    the bearer key, so "Try it out" reaches the API."""
    served, settings, _ = console
    from playwright.sync_api import expect

    from dispatcher.app import identity

    key = identity.create_key(settings, "docs-reader", "viewer").key
    page = browser.new_page(viewport=LAPTOP)
    problems = watch_console(page)
    page.goto(f"{served.url}/api/v1/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15000)
    assert page.locator(".opblock").count() >= 15
    assert "Unable to render" not in page.content()
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    page.locator(".modal-ux input").first.fill(key)
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.close-modal").click()
    operation = page.locator("#operations-campaigns-list_campaigns_api_v1_campaigns_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answered = operation.locator(".live-responses-table tbody td.response-col_status").first
    expect(answered).to_have_text("200", timeout=15000)
    assert "Validation Error" not in operation.inner_text()  # errors are the API's own body, 400 not 422
    page.screenshot(path=str(shots_folder(tmp_path) / "api-docs-1366.png"), full_page=False)
    assert not [p for p in problems if "error" in p.lower()], problems
    page.close()
