"""One store (one engine, one connection pool) per database in a web process (dispatcher/app/common.py
`open_store`): the API's and the console's requests, whatever use case each runs, share it, on SQLite and
on PostgreSQL; a SQLite file made anew at the same path is the new file's store, with its schema checked
again. The app in this process (FastAPI's TestClient, its lifespan), real keys, real databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from campaigns.store import Store
from dispatcher.config import AppSettings
from dispatcher.web import create_app
from tests.support.api import bearer, make_key
from tests.support.console import csrf_of, log_in, make_users

pytestmark = pytest.mark.slow


def _requests(client: TestClient, key: str) -> None:
    """A round of what a web process answers: reads, a write, the console's pages, each a use case."""
    auth = bearer(key)
    for path in ("/api/v1/campaigns", "/api/v1/optouts", "/api/v1/recipients?phone=09121234567"):
        assert client.get(path, headers=auth).status_code == 200, path
    assert client.get("/api/v1/campaigns/7", headers=auth).status_code == 404
    added = client.post("/api/v1/optouts", json={"phones": ["09121234567"]}, headers=auth)
    assert added.status_code == 200, added.text
    for page in ("/campaigns", "/optouts", "/numbers?phone=09121234567"):
        assert client.get(page).status_code == 200, page


def test_every_request_uses_the_one_store_of_its_database(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made: list[str] = []
    real = Store.from_url.__func__

    def counted(cls: type[Store], url: str) -> Store:
        made.append(url)
        return real(cls, url)

    settings = AppSettings.from_env(
        {"SMSDISPATCH_DATABASE_URL": database_url, "SMSDISPATCH_UPLOAD_DIR": str(tmp_path / "up")}
    )
    make_users(settings)
    key = make_key(settings, "admin")[0]
    monkeypatch.setattr(Store, "from_url", classmethod(counted))
    with TestClient(create_app(settings, background=False), base_url="https://testserver") as client:
        assert log_in(client, "admin").status_code == 303
        for _ in range(5):
            _requests(client, key)
        csrf = csrf_of(client.get("/optouts").text)
        assert client.post("/optouts/add", data={"csrf": csrf, "phones": "09351234567"}).status_code < 400
    assert made == [], f"{len(made)} stores made for {len(set(made))} database(s) by 40 requests"
    if database_url.startswith("postgresql"):
        store = Store.from_url(database_url)  # another pool, to count the web's connections
        try:
            with store.engine.connect() as conn:
                mine = conn.execute(text("SELECT current_database()")).scalar()
                count = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"), {"d": mine}
                ).scalar()
            assert count <= 1 + 10, f"{count} connections to the database after 40 requests"
        finally:
            store.engine.dispose()


def test_a_sqlite_file_made_anew_is_the_new_files_store(tmp_path, monkeypatch):
    """The database file removed and made again (a restore, a test's fresh start) while `web` runs: the
    requests after it read the new file (a key created in it authenticates), not the old file's pool."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "web.db"
    settings = AppSettings.from_env(
        {"SMSDISPATCH_DATABASE_URL": f"sqlite:///{path}", "SMSDISPATCH_UPLOAD_DIR": str(tmp_path / "up")}
    )
    old = make_key(settings, "viewer")[0]
    with TestClient(create_app(settings, background=False)) as client:
        assert client.get("/api/v1/campaigns", headers=bearer(old)).status_code == 200
        for name in ("web.db", "web.db-wal", "web.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        new = make_key(settings, "viewer")[0]  # in a new file at the same path, its schema made again
        assert client.get("/api/v1/campaigns", headers=bearer(new)).status_code == 200
        assert client.get("/api/v1/campaigns", headers=bearer(old)).status_code == 401  # the old file's key
