"""Every kind of bad input the CLI refuses is refused by the API with the same line: 400 for what `send`
exits 2 on, 422 (with the check and its override) for a preflight refusal (exit 3); 413 past the upload
cap or a workbook's inflation guard; 502 when the provider refuses our credentials. Nothing is stored."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dispatcher.config import AppSettings
from dispatcher.demo.messy import write as write_demo_csv
from dispatcher.web import create_app
from dispatcher.web.wording import for_api
from tests.support.api import bearer, make_key
from tests.support.cli import run_cli
from tests.test_api import TEXT, api_env  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
FLAGS = {
    "at": "--at",
    "budget": "--budget",
    "max_parts": "--max-parts",
    "on_unknown": "--on-unknown",
    "type": "--type",
    "window": "--window",
    "column": "--column",
    "sheet": "--sheet",
}


@pytest.fixture
def client(api_env, monkeypatch, sandbox):  # noqa: F811 - the fixture imported above
    for name, value in api_env.items():
        monkeypatch.setenv(name, value)  # the CLI run beside it reads the same settings
    settings = AppSettings.from_env(api_env)
    with TestClient(create_app(settings, background=False)) as c:
        c.headers.update(bearer(make_key(settings, "sender")[0]))
        yield c


def _post(client: TestClient, path: Path, provider: str = "ghasedak", message: str = TEXT, **fields: str):  # noqa: ANN201
    data = {"provider": provider, "message": message, "window": "any", **fields}
    with path.open("rb") as fh:
        return client.post("/api/v1/campaigns", files={"file": (path.name, fh, "text/csv")}, data=data)


def _cli(
    capsys, path: Path, provider: str = "ghasedak", message: str = TEXT, **fields: str
) -> tuple[int, str]:  # noqa: ANN001
    argv = ["send", str(path), "--provider", provider, "--message", message, "--json"]
    if "window" not in fields:
        argv += ["--window", "any"]
    for name, value in fields.items():
        argv += [FLAGS[name], value]
    code, _, err = run_cli(argv, capsys)
    return code, err.strip().splitlines()[-1].removeprefix("error: ")


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


CASES = {
    "unknown provider": ({"provider": "ghasedek"}, None),
    "an unparsable time": ({"at": "tomorrow-ish"}, None),
    "a time in the past": ({"at": "2020-01-01 10:00"}, None),
    "a bad window": ({"window": "25:00-26:00"}, None),
    "a bad budget": ({"budget": "fifty"}, None),
    "a bad on_unknown": ({"on_unknown": "maybe"}, None),
    "a bad type": ({"type": "spam"}, None),
    "an unknown placeholder": ({"message": "Hi {nosuch}"}, None),
    "no phone column": ({}, b"a,b\n1,2\n"),
    "a NUL byte": ({}, b"phone,name\n09121234567,a\x00b\n"),
    "a quote that never closes": ({}, b'phone,name\n09121234567,"open\n09121234568,x\n'),
    "no valid row": ({}, b"phone,name\n123,a\n456,b\n"),
    "a column named that is not there": ({"column": "mobile2"}, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_400_with_the_cli_line(client, tmp_path, capsys, case):
    fields, content = CASES[case]
    path = (
        _file(tmp_path, "list.csv", content)
        if content is not None
        else write_demo_csv(tmp_path / "list.csv", 10, seed=3)
    )
    answer = _post(client, path, **fields)
    code, line = _cli(capsys, path, **fields)
    assert code == 2
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    # the same line in the API's words (its fields, not the CLI's options: dispatcher/web/wording.py); the
    # file's path is the server's own (the upload's folder under SMSDISPATCH_UPLOAD_DIR)
    message = re.sub(r"/uploads/[0-9a-f]{32}", "", error["message"])
    assert error["kind"] == "bad_input" and message == for_api(line)
    assert not re.search(r"--[a-z]|smsdispatch [a-z]", message), message
    assert "Traceback" not in answer.text
    assert client.get("/api/v1/campaigns").json() == []


def test_a_preflight_refusal_is_422_with_its_check_and_override(client, tmp_path, capsys):
    path = write_demo_csv(tmp_path / "list.csv", 30, seed=4)
    assert _post(client, path, at="2099-01-01 10:00").status_code == 201  # scheduled: unfinished
    answer = _post(client, path, at="2099-01-01 10:00")
    code, line = _cli(capsys, path, at="2099-01-01 10:00")
    assert code == 3 and answer.status_code == 422
    error = answer.json()["error"]
    assert error == {
        "kind": "refused",
        "message": for_api(line),
        "check": "duplicate",
        "override": "allow_duplicate=true",  # the field to send, not the CLI's --allow-duplicate
    }
    assert "--" not in error["message"] and "smsdispatch" not in error["message"], error["message"]
    assert error["message"].endswith("to send anyway: allow_duplicate=true")
    again = _post(client, path, at="2099-01-01 10:00", allow_duplicate="true")
    assert again.status_code == 201, again.text
    warned = {w["code"]: w["message"] for w in again.json()["warnings"]}
    assert "duplicate" in warned and "smsdispatch" not in warned["duplicate"], warned  # the API's words


def test_unknown_fields_missing_fields_and_bodies(client, tmp_path):
    path = write_demo_csv(tmp_path / "list.csv", 5, seed=5)
    unknown = _post(client, path, colour="blue")
    assert unknown.status_code == 400 and "unknown field 'colour'" in unknown.json()["error"]["message"]
    assert client.post("/api/v1/campaigns", json={"provider": "ghasedak", "message": "x"}).status_code == 400
    assert (
        client.post(
            "/api/v1/campaigns", content=b"{nope", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    too_many = [{"phone": "09120000000"}] * 10_001
    big = client.post(
        "/api/v1/campaigns", json={"provider": "ghasedak", "message": "x", "recipients": too_many}
    )
    assert big.status_code == 400 and "at most 10,000" in big.json()["error"]["message"]
    assert client.get("/api/v1/campaigns/77").status_code == 404
    assert client.get("/api/v1/campaigns/77").json()["error"]["kind"] == "not_found"
    assert client.get("/api/v1/campaigns/1/report?format=pdf").status_code == 400


def test_uploads_over_the_cap_are_413_and_leave_nothing(api_env, tmp_path, sandbox):  # noqa: F811
    settings = AppSettings.from_env({**api_env, "SMSDISPATCH_MAX_UPLOAD_MB": "0.05"})
    with TestClient(create_app(settings, background=False)) as c:
        c.headers.update(bearer(make_key(settings, "sender")[0]))
        path = write_demo_csv(tmp_path / "big.csv", 3000, seed=6)
        assert path.stat().st_size > 0.05 * 1048576
        answer = _post(c, path)
        assert answer.status_code == 413 and answer.json()["error"]["kind"] == "too_large"
        uploads = Path(api_env["SMSDISPATCH_UPLOAD_DIR"])
        assert not uploads.exists() or not any(uploads.rglob("*.csv"))


def test_a_workbook_that_inflates_past_the_guard_is_413(client, tmp_path, monkeypatch):
    from openpyxl import Workbook

    import campaigns.load.xlsx as xlsx

    book = Workbook()
    sheet = book.active
    sheet.append(["phone", "note"])
    for i in range(2000):
        sheet.append([f"0912{i:07d}", "x" * 200])
    path = tmp_path / "bomb.xlsx"
    book.save(path)
    with zipfile.ZipFile(path) as z:
        inflated = sum(i.file_size for i in z.infolist())
    monkeypatch.setattr(xlsx, "MAX_INFLATED_BYTES", inflated // 2)
    answer = _post(client, path, message="hello لغو11")
    assert answer.status_code == 413, answer.text
    assert "inflates past the guard" in answer.json()["error"]["message"]


def test_a_provider_refusing_our_credentials_is_502(api_env, tmp_path, sandbox):  # noqa: F811
    settings = AppSettings.from_env({**api_env, "SMSDISPATCH_GHASEDAK_APIKEY": "wrong-key"})
    with TestClient(create_app(settings, background=False)) as c:
        c.headers.update(bearer(make_key(settings, "sender")[0]))
        answer = _post(c, write_demo_csv(tmp_path / "l.csv", 5, seed=7))
        assert answer.status_code == 502, answer.text
        assert answer.json()["error"]["kind"] == "provider" and "wrong-key" not in answer.text


@pytest.mark.parametrize(
    ("provider", "unset", "named"),
    [
        ("ghasedak", ["SMSDISPATCH_GHASEDAK_APIKEY"], ["SMSDISPATCH_GHASEDAK_APIKEY"]),
        ("amoot", ["SMSDISPATCH_AMOOT_TOKEN"], ["SMSDISPATCH_AMOOT_TOKEN"]),
        ("negin", ["SMSDISPATCH_NEGIN_PASSWORD"], ["SMSDISPATCH_NEGIN_PASSWORD"]),
        (
            "mediapayamak",
            ["SMSDISPATCH_MEDIAPAYAMAK_APIKEY", "SMSDISPATCH_MEDIAPAYAMAK_USERNAME"],
            ["SMSDISPATCH_MEDIAPAYAMAK_APIKEY", "SMSDISPATCH_MEDIAPAYAMAK_USERNAME"],
        ),
    ],
)
def test_a_provider_without_a_credential_is_400_naming_it(api_env, tmp_path, sandbox, provider, unset, named):  # noqa: F811
    """The request chose a provider this server has no credential for: the request's configuration
    problem (400 naming the provider and the variable to set), not the provider's (502) nor ours (500);
    no value of any credential in the answer, nothing stored."""
    env = {k: v for k, v in api_env.items() if k not in unset}
    settings = AppSettings.from_env(env)
    secrets = [v for k, v in api_env.items() if k.endswith(("_APIKEY", "_TOKEN", "_PASSWORD"))]
    path = write_demo_csv(tmp_path / "l.csv", 5, seed=3)
    with TestClient(create_app(settings, background=False)) as c:
        c.headers.update(bearer(make_key(settings, "sender")[0]))
        answers = [
            _post(c, path, provider=provider),
            _post(c, path, provider=provider, dry_run="true"),
            _post(c, path, provider=f"{provider},{'amoot' if provider != 'amoot' else 'ghasedak'}"),
            c.post(
                "/api/v1/campaigns",
                json={"provider": provider, "message": TEXT, "recipients": [{"phone": "09121234567"}]},
            ),
        ]
        with path.open("rb") as fh:
            answers.append(
                c.post(
                    "/api/v1/drafts",
                    files={"file": (path.name, fh, "text/csv")},
                    data={"provider": provider, "message": TEXT},
                )
            )
        for answer in answers:
            assert answer.status_code == 400, answer.text
            error = answer.json()["error"]
            assert error["kind"] == "bad_input" and error["provider"] == provider, error
            assert error["message"].startswith(f"provider {provider} has no credential on this server: set")
            assert all(name in error["message"] for name in named), error["message"]
            assert not any(secret in answer.text for secret in secrets)
        assert c.get("/api/v1/campaigns").json() == []


def _checked(c: TestClient, path: Path) -> int:
    """POST the file to /api/v1/drafts with the client's key; the draft's id."""
    with path.open("rb") as fh:
        made = c.post(
            "/api/v1/drafts",
            files={"file": (path.name, fh, "text/csv")},
            data={"provider": "ghasedak", "message": TEXT, "window": "any"},
        )
    assert made.status_code == 201, made.text
    return int(made.json()["draft"])


def test_a_draft_sent_after_its_providers_credential_went_is_400_and_can_be_sent_later(
    api_env,  # noqa: F811
    tmp_path,
    sandbox,
):
    settings = AppSettings.from_env(api_env)
    key = make_key(settings, "sender")[0]
    with TestClient(create_app(settings, background=False)) as c:
        c.headers.update(bearer(key))
        draft = _checked(c, write_demo_csv(tmp_path / "l.csv", 5, seed=4))
    without = AppSettings.from_env({k: v for k, v in api_env.items() if k != "SMSDISPATCH_GHASEDAK_APIKEY"})
    with TestClient(create_app(without, background=False)) as c:
        c.headers.update(bearer(key))
        refused = c.post(f"/api/v1/drafts/{draft}/send")
        assert refused.status_code == 400, refused.text
        assert "SMSDISPATCH_GHASEDAK_APIKEY" in refused.json()["error"]["message"]
    with TestClient(create_app(settings, background=False)) as c:
        c.headers.update(bearer(key))
        sent = c.post(f"/api/v1/drafts/{draft}/send")
        assert sent.status_code == 201, sent.text  # the refusal left the draft to send once configured


def test_the_api_words_name_exactly_the_fields_the_api_reads():
    """dispatcher/web/wording.py names a CLI option by the field dispatcher/web/forms.py reads for it: every
    option it names is a field the API takes, every field a caller gives `send` has its option there, and
    the flags (`allow_partial=true`) are the fields read as true or false."""
    import dataclasses

    from dispatcher.app import SendRequest
    from dispatcher.web import wording
    from dispatcher.web.forms import ALIASES, NOT_FROM_CALLERS, WEB_FIELDS

    given = {f.name: f for f in dataclasses.fields(SendRequest) if f.name not in NOT_FROM_CALLERS}
    api = {({v: k for k, v in ALIASES.items()}.get(name, name)) for name in given} | {"dry_run"}
    assert set(wording.FIELDS.values()) == api, set(wording.FIELDS.values()) ^ api
    assert set(WEB_FIELDS) - api == {"callback_url"}  # the API's own field, no option of `send`
    flags = {"--" + n.replace("_", "-") for n, f in given.items() if f.type in ("bool", bool)} | {"--dry-run"}
    assert flags == wording.FLAGS, flags ^ wording.FLAGS
    assert wording.for_api("to send anyway: --allow-partial") == "to send anyway: allow_partial=true"
    assert wording.for_api("--header-row N") == "header_row=N"


def test_a_draft_whose_credit_ran_out_since_its_check_is_refused_at_the_send_and_sent_once_topped_up(
    api_env,  # noqa: F811
    tmp_path,
    sandbox,
):
    """A draft waits up to a day; other campaigns spend the credit meanwhile. Its send reads the balance
    again: below what the check counted, it is the credit refusal (422, check and override named as the
    API names them), nothing stored, and the draft is left to send once the credit covers it."""
    settings = AppSettings.from_env({**api_env, "SMSDISPATCH_GHASEDAK_PRICE": "1000"})
    key = make_key(settings, "sender")[0]
    sandbox.state.credit["ghasedak"] = 1_000  # plenty at the check
    with TestClient(create_app(settings, background=False)) as c:
        c.headers.update(bearer(key))
        draft = _checked(c, write_demo_csv(tmp_path / "l.csv", 10, seed=5))
        sandbox.state.credit["ghasedak"] = 1  # spent elsewhere since
        refused = c.post(f"/api/v1/drafts/{draft}/send")
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert (
            error["check"] == "credit" and "check the file again with allow_partial=true" in error["message"]
        )
        assert "--" not in error["message"], error  # the API's words, not the CLI's
        assert c.get("/api/v1/campaigns").json() == []
        sandbox.state.credit["ghasedak"] = 1_000
        sent = c.post(f"/api/v1/drafts/{draft}/send")
        assert sent.status_code == 201, sent.text
