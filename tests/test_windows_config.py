"""--at / --window parsing, configuration layering, secrets, rate parsing."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from campaigns.windows import WhenError, Window, closed_windows, parse_when, parse_window
from dispatcher.config import load_config
from workers.errors import ConfigurationError, redact
from workers.settings import DispatchSettings, Secret, parse_rate


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-12-04T10:00", datetime(2026, 12, 4, 6, 30, tzinfo=UTC)),  # Tehran is +03:30
        ("2026-12-04 10:00+00:00", datetime(2026, 12, 4, 10, 0, tzinfo=UTC)),
        ("1405/09/10 10:00", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),
        ("۱۴۰۵/۰۹/۱۰ ۱۰:۰۰", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_parse_when(text, expected):
    assert parse_when(text) == expected


@pytest.mark.parametrize("text", ["tomorrow", "1405/13/01 10:00", "2026-02-30T10:00"])
def test_parse_when_rejects_with_the_fix(text):
    with pytest.raises(WhenError, match="like"):
        parse_when(text)


def test_window():
    w = parse_window("09:00-21:00")
    assert w == Window(time(9), time(21)) and str(w) == "09:00-21:00"
    assert w.is_open(datetime(2026, 12, 4, 6, 0, tzinfo=UTC))  # 09:30 Tehran
    assert not w.is_open(datetime(2026, 12, 4, 18, 0, tzinfo=UTC))  # 21:30 Tehran
    night = parse_window("22:00-06:00")
    assert night.is_open(datetime(2026, 12, 4, 20, 0, tzinfo=UTC))  # 23:30 Tehran
    assert w.next_open(datetime(2026, 12, 4, 6, 0, tzinfo=UTC)) == datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    assert w.next_open(datetime(2026, 12, 4, 18, 0, tzinfo=UTC)) == datetime(2026, 12, 5, 5, 30, tzinfo=UTC)
    assert night.next_open(datetime(2026, 12, 4, 10, 0, tzinfo=UTC)) == datetime(
        2026, 12, 4, 18, 30, tzinfo=UTC
    )
    for bad in ("9-5", "25:00-01:00", "10:00-10:00"):
        with pytest.raises(WhenError):
            parse_window(bad)


def test_closed_windows_names_the_opening_time():
    at = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)  # 22:30 Tehran
    windows = {1: "09:00-21:00", 2: "22:00-06:00", 3: "21:00-23:00"}
    assert closed_windows(windows, at) == {1: datetime(2026, 12, 5, 5, 30, tzinfo=UTC)}


def test_default_send_window_setting():
    assert DispatchSettings.from_env({"SMSDISPATCH_SEND_WINDOW": "09:00-21:00"}).send_window == "09:00-21:00"
    assert DispatchSettings.from_env({}).send_window == ""


def test_config_files_add_but_never_override(tmp_path):
    (tmp_path / ".env").write_text("SMSDISPATCH_GHASEDAK_APIKEY=from-dotenv\nSMSDISPATCH_AMOOT_TOKEN='tok'\n")
    (tmp_path / "smsdispatch.toml").write_text('[ghasedak]\napikey = "from-toml"\nsender = "3000"\n')
    env = {"SMSDISPATCH_GHASEDAK_SENDER": "from-env"}
    load_config(env, cwd=tmp_path)
    assert env["SMSDISPATCH_GHASEDAK_SENDER"] == "from-env"
    assert env["SMSDISPATCH_GHASEDAK_APIKEY"] == "from-toml"
    assert env["SMSDISPATCH_AMOOT_TOKEN"] == "tok"


def test_bad_config_file_is_named(tmp_path):
    (tmp_path / "smsdispatch.toml").write_text("[ghasedak\n")
    with pytest.raises(ConfigurationError, match="smsdispatch.toml"):
        load_config({}, cwd=tmp_path)


def test_secrets_never_print():
    s = Secret("very-secret")
    assert "very-secret" not in repr(s) + str(s) + f"{s}" + repr({"k": s})
    assert redact("apikey=abc123&x=1 token: zzz", ["nothing"]) == "apikey=***&x=1 token: ***"
    assert redact("the key very-secret leaked", ["very-secret"]) == "the key *** leaked"


def test_rates():
    assert parse_rate("30/s") == 30 and parse_rate("600/m") == 10
    with pytest.raises(ConfigurationError, match="30/s"):
        parse_rate("fast")
