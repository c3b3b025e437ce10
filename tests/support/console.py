"""The console under test: an app over a fresh SQLite store and the sandbox, users of every role, a
logged-in TestClient per role, and every page parsed and checked as GOV.UK Notify's admin checks its
pages (tests/conftest.py `client_request` there): a title, forms with an action, no duplicate ids, the
CSP nonce on every script."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from dispatcher.app import identity
from dispatcher.config import AppSettings
from dispatcher.web import create_app

PASSWORD = "a long enough password 1"
ROLES = ("viewer", "operator", "sender", "admin")
TEXT = "{name} عزیز، ۲۰٪ تخفیف ویژه شما. لغو11"


def console_env(tmp: Path, sandbox_environ: dict[str, str]) -> dict[str, str]:
    return {
        **sandbox_environ,
        "SMSDISPATCH_DATABASE_URL": f"sqlite:///{tmp / 'console.db'}",
        "SMSDISPATCH_UPLOAD_DIR": str(tmp / "uploads"),
        "SMSDISPATCH_OPTOUT_EVERY": "0",
        "SMSDISPATCH_POLL_INTERVALS": "0.5,1",
        "SMSDISPATCH_HEARTBEAT_EVERY": "0.5",
        "SMSDISPATCH_GHASEDAK_PRICE": "1000",
        "SMSDISPATCH_SEND_WINDOW": "any",
    }


def make_users(settings: AppSettings) -> None:
    for role in ROLES:
        identity.add_user(settings, role, role, PASSWORD)


def app_for(settings: AppSettings, *, background: bool = False):  # noqa: ANN201
    return create_app(settings, background=background)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: TestClient, name: str, password: str = PASSWORD, **headers: str):  # noqa: ANN201
    page = client.get("/login")
    return client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "username": name, "password": password, "next": "/campaigns"},
        headers=headers,
        follow_redirects=False,
    )


def parse(response) -> BeautifulSoup:  # noqa: ANN001
    """The page, checked the way Notify's admin checks each of its pages."""
    soup = BeautifulSoup(response.text, "html5lib")
    title = soup.find("title")
    assert title is not None and title.text.strip(), "the page has no title"
    for form in soup.find_all("form"):
        assert form.get("action"), f"a form without an action: {str(form)[:200]}"
        if (form.get("method") or "get").lower() == "post":
            assert form.find("input", {"name": "csrf"}), (
                f"a POST form without a CSRF token: {form.get('action')}"
            )
    ids = Counter(tag["id"] for tag in soup.find_all(id=True))
    duplicates = [i for i, n in ids.items() if n > 1]
    assert not duplicates, f"duplicate ids: {duplicates}"
    policy = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    for script in soup.find_all("script"):
        assert script.get("nonce") == nonce, f"a script without the page's nonce: {script}"
    assert not soup.find_all(style=True), "an inline style attribute (the CSP refuses it)"
    assert not soup.find_all("style"), "a <style> element (the CSP refuses it without a nonce)"
    for label in soup.find_all("label"):
        target = label.get("for")
        if target:
            assert soup.find(id=target), f"a label for a missing field: {target}"
    return soup


class Served:
    """`smsdispatch web`'s app served by uvicorn on a free loopback port, in a thread of the test: the
    embedded serve loop sends and polls as in production."""

    def __init__(self, settings: AppSettings) -> None:
        import socket
        import threading

        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app_for(settings, background=True), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the console did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
