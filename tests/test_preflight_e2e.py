"""The preflight use case end to end: a real file, the real store (SQLite and PostgreSQL), real HTTP to the
sandbox (README, "Preflight": the half-send, the re-send and the 23-part message caught before anything is stored)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from campaigns.load import RecipientLoader
from campaigns.models import Campaign, Recipient
from campaigns.plan import plan
from campaigns.preflight import Check, PreflightOptions, Severity
from campaigns.store import CampaignSpec, Store
from campaigns.store.preflight import recent_sends, set_fingerprint, unfinished_campaigns
from campaigns.text import Template
from dispatcher.app.preflight.gather import (
    CredentialsRejected,
    PreflightRequest,
    run_preflight,
    without_recent,
)
from dispatcher.engine.runner import LocalRunner
from workers.deps import ProviderPool, WorkerDeps
from workers.settings import DispatchSettings

TEXT = "سلام {name}، حراج پاییزه. لغو۱۱"
OPTIONS = PreflightOptions(window="09:00-21:00")


def write_csv(path: Path, n: int, *, reverse: bool = False, start: int = 0) -> Path:
    rows = [(f"0912{start + i:07d}", f"name{i}") for i in range(n)]
    lines = ["mobile,name", *(f"{p},{name}" for p, name in (rows[::-1] if reverse else rows))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def preflight(file: Path, env: dict[str, str], store: Store | None, text: str = TEXT, **options: object):  # noqa: ANN201
    opts = PreflightOptions(**{"window": "09:00-21:00", **options})  # type: ignore[arg-type]
    request = PreflightRequest(
        file, "amoot", Template(text), opts, rejects_path=file.with_suffix(".rejects.csv")
    )
    return run_preflight(request, engine=store.engine if store else None, env=env, cwd=file.parent)


def store_campaign(store: Store, file: Path, env: dict[str, str], fingerprint: str, text: str = TEXT) -> int:
    """What `send` does after a clean preflight: store the campaign, then record its fingerprint."""
    loader = RecipientLoader(file)
    template = Template(text)
    blocks = plan(loader.blocks(), template, 100, ["name"])
    spec = CampaignSpec("autumn", "amoot", "amoot:x", "public", template.text, True, str(file), "", ["name"])
    campaign_id = store.create_campaign(spec, blocks)
    set_fingerprint(store.engine, campaign_id, fingerprint)
    return campaign_id


def count_campaigns(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Campaign.__table__)).scalar_one()


def test_half_send_is_refused_before_anything_is_stored(sandbox, sandbox_environ, store, tmp_path) -> None:
    file = write_csv(tmp_path / "list.csv", 20)
    sandbox.state.credit["amoot"] = 10  # the sandbox's credit, in messages of one part: 10,000 rial
    result = preflight(file, sandbox_environ, store)
    s = result.summary
    assert (s.recipients, s.total_parts) == (20, 20)
    assert s.cost is not None and s.cost.estimate == 20_000 and s.cost.source == "amoot AccountStatus"
    assert (s.credit.balance, s.credit.unit, s.credit.enough) == (10_000, "rial", False)  # type: ignore[union-attr]
    (refusal,) = s.refusals
    assert refusal.code is Check.CREDIT and refusal.line().endswith("to send anyway: --allow-partial")
    assert count_campaigns(store) == 0
    sandbox.state.credit["amoot"] = 20
    assert preflight(file, sandbox_environ, store).summary.findings == []


def test_price_setting_overrides_the_provider_prices(sandbox, sandbox_environ, tmp_path) -> None:
    file = write_csv(tmp_path / "list.csv", 4)
    env = {**sandbox_environ, "SMSDISPATCH_AMOOT_PRICE": "ucs2=1500"}
    assert preflight(file, env, None).summary.cost.estimate == 6000  # type: ignore[union-attr]
    (tmp_path / "smsdispatch.toml").write_text("[prices.amoot]\nucs2 = 700\n", encoding="utf-8")
    assert preflight(file, sandbox_environ, None).summary.cost.estimate == 2800  # type: ignore[union-attr]


def test_rejected_key_is_an_error_before_anything_is_stored(
    sandbox, sandbox_environ, store, tmp_path
) -> None:
    file = write_csv(tmp_path / "list.csv", 3)
    env = {**sandbox_environ, "SMSDISPATCH_AMOOT_TOKEN": "wrong"}
    with pytest.raises(CredentialsRejected, match="amoot refused the account") as err:
        preflight(file, env, store)
    assert "wrong" not in str(err.value)
    assert count_campaigns(store) == 0


def test_resend_of_the_same_file_and_text_is_refused_naming_the_campaign(
    sandbox, sandbox_environ, store, tmp_path
) -> None:
    file = write_csv(tmp_path / "list.csv", 20)
    first = preflight(file, sandbox_environ, store).summary
    assert first.findings == []
    campaign_id = store_campaign(store, file, sandbox_environ, first.fingerprint)
    assert store.pause(campaign_id)  # as after Ctrl-C and a credit pause
    assert [(c.id, c.state) for c in unfinished_campaigns(store.engine)] == [(campaign_id, "paused")]
    # The same list, in another order and spelling, with the same text: refused, naming the campaign.
    again = write_csv(tmp_path / "again.csv", 20, reverse=True)
    again.write_text(again.read_text().replace("\n0912", "\n+98912"), encoding="utf-8")
    s = preflight(again, sandbox_environ, store).summary
    (refusal,) = s.refusals
    assert refusal.code is Check.DUPLICATE and refusal.override == "--allow-duplicate"
    assert f'campaign {campaign_id} "autumn", paused' in refusal.message
    assert refusal.message.endswith(f"continue it with: smsdispatch resume {campaign_id}")
    assert count_campaigns(store) == 1
    # Another text, or another list, is not a duplicate; --allow-duplicate turns it into a warning.
    assert preflight(again, sandbox_environ, store, text=TEXT + "!").summary.refusals == []
    assert preflight(write_csv(tmp_path / "b.csv", 19), sandbox_environ, store).summary.refusals == []
    allowed = preflight(again, sandbox_environ, store, allow_duplicate=True).summary
    assert [(f.code, f.severity) for f in allowed.findings] == [(Check.DUPLICATE, Severity.WARN)]


def test_23_part_message_warns(sandbox, sandbox_environ, tmp_path) -> None:
    file = write_csv(tmp_path / "list.csv", 5)
    long_text = "س" * 1500 + " {name} لغو11"
    s = preflight(file, sandbox_environ, None, text=long_text).summary
    assert s.parts_histogram == {23: 5} and s.total_parts == 115
    (warning,) = s.findings
    assert (warning.code, warning.severity) == (Check.PARTS, Severity.WARN)
    assert "up to 23" in warning.message
    strict = preflight(file, sandbox_environ, None, text=long_text, strict=True).summary
    assert [f.code for f in strict.refusals] == [Check.PARTS]


def test_recent_sends_of_another_campaign_warn_and_can_be_skipped(
    sandbox, sandbox_environ, store, tmp_path
) -> None:
    sent = write_csv(tmp_path / "sent.csv", 6)
    campaign_id = store_campaign(store, sent, sandbox_environ, "0" * 64)
    deps = WorkerDeps(
        store=store, providers=ProviderPool(sandbox_environ), settings=DispatchSettings(optout_every=0)
    )
    assert LocalRunner(deps).send(campaign_id, timeout=60).state in ("running", "completed")
    recent = recent_sends(store.engine, datetime.now(UTC) - timedelta(hours=24))
    assert len(recent) == 6
    assert recent_sends(store.engine, datetime.now(UTC) + timedelta(minutes=1)).numbers.size == 0
    file = write_csv(tmp_path / "new.csv", 10, start=3)  # rows 0912…3 to 0912…8 overlap: 3 of them
    s = preflight(file, sandbox_environ, store).summary
    (warning,) = s.findings
    assert (warning.code, warning.override) == (Check.RECENT, "--skip-recent")
    assert warning.message.startswith(
        f"3 recipients got a message from another campaign in the last 24 h (campaign {campaign_id}: 3)"
    )
    skipped = preflight(file, sandbox_environ, store, skip_recent=True)
    assert skipped.summary.findings == [] and skipped.summary.recipients == 7
    assert skipped.summary.rejected == {f"sent recently (campaign {campaign_id})": 3}
    kept = list(without_recent(RecipientLoader(file).blocks(), skipped.recent))
    assert sum(len(b) for b in kept) == 7
    # Outside the cap, nothing is recent.
    with store.engine.begin() as conn:
        conn.execute(update(Recipient.__table__).values(sent_at=datetime.now(UTC) - timedelta(hours=25)))
    assert preflight(file, sandbox_environ, store).summary.findings == []


def test_rejected_rows_by_reason(sandbox, sandbox_environ, store, tmp_path) -> None:
    file = tmp_path / "list.csv"
    file.write_text("mobile,name\n09121234567,a\n0912123,b\n09121234567,c\n+441234567890,d\n09121112222,e\n")
    store.suppress(["+989121112222"], "replied لغو")
    s = preflight(file, sandbox_environ, store).summary
    assert s.recipients + sum(s.rejected.values()) == 5
    assert s.rejected == {"duplicate": 1, "too short": 1, "not an Iranian number": 1, "opted out": 1}
    assert s.suppressed == 1


def test_amoot_price_kind_and_alphabets() -> None:
    from campaigns.operators import Operator
    from campaigns.text import Alphabet
    from dispatcher.app.prices import amoot_price_table

    fields = {
        "BaseSMS_PersianPrice": 900.0,
        "ServiceSMS_PersianPrice": 1100.0,
        "AdsSMS_PersianPrice": 1300.0,
        "BaseSMS_EnglishPrice": 500.0,
    }
    safe = amoot_price_table(fields)  # the docs do not say which applies: the highest
    assert (
        safe.per_part(Operator.MCI, Alphabet.UCS2) == 1300
        and safe.per_part(Operator.MCI, Alphabet.GSM7) == 500
    )
    assert amoot_price_table(fields, "service").per_part(Operator.OTHER, Alphabet.UCS2) == 1100
    assert amoot_price_table(fields, "ads").per_part(Operator.OTHER, Alphabet.GSM7) is None


def test_amoot_price_kind_setting_is_checked(sandbox, sandbox_environ, tmp_path) -> None:
    from workers.errors import ConfigurationError

    file = write_csv(tmp_path / "list.csv", 2)
    env = {**sandbox_environ, "SMSDISPATCH_AMOOT_PRICE_KIND": "ads"}
    assert preflight(file, env, None).summary.cost.estimate == 2000  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="SMSDISPATCH_AMOOT_PRICE_KIND='vip': choose one of base"):
        preflight(file, {**sandbox_environ, "SMSDISPATCH_AMOOT_PRICE_KIND": "vip"}, None)


def test_rejected_by_reason_without_a_rejects_file() -> None:
    from campaigns.load import LoadStats
    from dispatcher.app.preflight.gather import rejected_by_reason

    stats = LoadStats(
        rows=10, valid=6, rejected=4, duplicates=1, suppressed=1, encoding="utf-8", phone_column="m"
    )
    assert rejected_by_reason(None, stats) == {"invalid": 2, "duplicate": 1, "opted out": 1}
