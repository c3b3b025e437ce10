"""Drafts: a checked upload kept for a person to confirm (the console's two steps), in the database so
any `web` process can send it (campaigns.store.apirequests).

`check_draft` runs the preflight exactly as `send` does and keeps the rows it kept (one Parquet blob per
block) with what the campaign is made of; `send_draft` stores a campaign from exactly those rows, with
the suppression list applied again (numbers that opted out since the check go to the rejects file and
the answer counts them). A draft is not a campaign (not even the `draft` campaign state): the duplicate
check compares campaigns only. Drafts expire after 24 hours (`DRAFT_TTL`); one is sent at most once.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from campaigns.clock import utcnow
from campaigns.identity import Permission
from campaigns.load import PHONE, ROW
from campaigns.plan import batch_size, plan
from campaigns.preflight.checks import credit_finding
from campaigns.preflight.summary import Credit
from campaigns.prices import PriceTable
from campaigns.store import CampaignSpec, Store
from campaigns.store import apirequests as kept
from campaigns.text import Template
from dispatcher.app.actors import Actor, acting, require, started_by
from dispatcher.app.campaign import CampaignSummary, SendRequest, prepare
from dispatcher.app.common import BadInput, Refused, open_store
from dispatcher.app.preflight.gather import prove_credentials
from dispatcher.app.preflight.usecase import BlockSpool, preflight
from dispatcher.app.submit import check_callback, hand_over
from dispatcher.config import AppSettings
from workers.providers.base import ProviderClient

OPTED_OUT_SINCE = "opted out since the check"
RECHECK_PARTIAL = "top up the credit and send the draft again, or check the file again with --allow-partial"


class NoDraft(BadInput):
    """No such draft (or it expired): the API answers 404."""


class DraftTaken(BadInput):
    """The draft was sent already (or is being sent): the API answers 409."""


def check_draft(
    settings: AppSettings,
    request: SendRequest,
    principal: str,
    *,
    callback_url: str | None = None,
    callback_key_id: int | None = None,
    refuse: bool = True,
) -> dict[str, Any]:
    """The preflight of `request` (Refused as `send` would), its kept rows stored as a draft; the answer is
    `{"draft", "expires_at", …the preflight's keys…, "recipients", "rejected", "rejects_file"}`.

    `refuse=False` (the console) keeps a draft that a check refused, to show the refusal and its override
    on the check page; such a draft cannot be sent (`send_draft` raises Refused), only checked again with
    the override (`dispatcher.app.checked.recheck_request`)."""
    from dispatcher.app.checked import check_facts

    check_callback(settings, callback_url)
    prepared = prepare(settings, request)
    summary = preflight(settings, prepared, refuse=refuse, refuse_empty=True)
    assert prepared.template is not None
    store = prepared.store or open_store(settings)  # opened for writing only once the check passed
    assert store is not None
    spec = dataclasses.replace(prepared.spec, callback_url=callback_url, callback_key_id=callback_key_id)
    plain = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    plain["prices"] = spec.prices.as_json() if spec.prices else None
    plain["route_prices"] = {name: table.as_json() for name, table in spec.route_prices.items()}
    facts = {
        "spec": {k: _plain(v) for k, v in plain.items()},
        "template": prepared.template.text,
        "rejected": prepared.loader.stats.rejected + prepared.skipped,
        "check": check_facts(prepared, summary),
        "refusal": summary.refusals[0].line() if summary.refusals else None,
        "refusal_check": (
            [summary.refusals[0].code.value, summary.refusals[0].override] if summary.refusals else None
        ),
    }
    answer = summary.to_json()
    now = utcnow()
    draft = kept.save_draft(
        store.engine,
        principal,
        json.dumps(facts, ensure_ascii=False),
        json.dumps(answer),
        prepared.spool,
        now,
    )
    return {
        "draft": draft,
        "expires_at": (now + kept.DRAFT_TTL).isoformat(),
        "recipients": summary.recipients,
        "rejected": facts["rejected"],
        "rejects_file": str(prepared.rejects_path),
        **answer,
    }


def _credit_short(client: ProviderClient, facts: dict[str, Any]) -> Credit | None:
    """The credit check again at the send (a draft waits up to 24 hours; other campaigns spend the credit
    meanwhile): the balance read now, as a Credit, when it no longer covers what the check found the
    campaign needs (in the balance's unit); None when it does, or when the check counted no need (no
    balance call, no price) or was told `allow_partial`. Raises what reading the balance raises
    (ProviderUnreachable, CredentialsRejected)."""
    check = facts.get("check") or {}
    needed = check.get("credit_needed")
    if needed is None or (check.get("options") or {}).get("allow_partial"):
        return None
    balance = prove_credentials(client)
    if balance is None or float(balance.amount) >= float(needed):
        return None
    return Credit(float(balance.amount), balance.unit, float(needed), False)


def _refuse_short(store: Store, record: kept.DraftRecord, facts: dict[str, Any], credit: Credit) -> NoReturn:
    """Refused (check `credit`; its override `RECHECK_PARTIAL`: the send takes no option), the draft's answer
    restated with the balance just read, so its check page shows that credit, not the check's."""
    answer = json.loads(record.summary)
    answer["credit"] = credit.to_json()
    kept.restate_draft(store.engine, record.id, json.dumps(answer))
    finding = credit_finding(
        credit, int((facts.get("check") or {}).get("total_parts") or 0), allow_partial=False, strict=False
    )
    raise Refused.of(dataclasses.replace(finding, override=RECHECK_PARTIAL))


def _plain(value: Any) -> Any:
    return (
        value.isoformat()
        if isinstance(value, datetime)
        else list(value)
        if isinstance(value, tuple)
        else value
    )


def send_draft(
    settings: AppSettings, draft_id: int, principal: str, *, actor: Actor | None = None
) -> dict[str, Any]:
    """Store the draft's campaign from its checked rows and start it; `send --json`'s campaign keys plus
    `"draft"` and `"opted_out_since_check"`.

    Who sends is checked at the send, not at the check: `actor` needs SEND now (Forbidden: an operator
    checks, and cannot send), and a draft is sent as it was checked only by the `principal` who checked
    it (NoDraft for anyone else's, as for none: its preflight ran for that principal, whose overrides it
    carries). Another person sends the file by checking it themselves, which runs the preflight for them.
    The credit is read again at the send (`_credit_short`: Refused when it no longer covers what
    the check counted, unless the check was told `allow_partial`), and so is the sender's daily cap
    (`started_by`: a cap in rial needs the check's prices, BadInput otherwise; and at each chunk's claim). NoDraft (none, another's, or expired),
    DraftTaken (sent already), Refused (a refused check)."""
    require(acting(actor), Permission.SEND)
    store = open_store(settings)
    assert store is not None
    record = kept.read_draft(store.engine, draft_id)
    now = utcnow()
    if (
        record is None
        or record.principal != principal
        or (record.campaign_id is None and record.expires_at < now)
    ):
        raise NoDraft(
            f"no draft {draft_id} of yours (a draft is sent by whoever checked it, within 24 hours); "
            "check the file yourself: POST /api/v1/drafts"
        )
    if not kept.claim_draft(store.engine, draft_id, now):
        sent = f" as campaign {record.campaign_id}" if record.campaign_id else ""
        raise DraftTaken(f"draft {draft_id} was sent already{sent}; see GET /api/v1/campaigns")
    try:
        facts = json.loads(record.request)
        if facts.get("refusal"):
            code, override = facts["refusal_check"]
            raise Refused(facts["refusal"], check=code, override=override)
        spec = spec_of(facts)
        client = settings.client(spec.provider)
        short = _credit_short(client, facts)
        if short is not None:
            _refuse_short(store, record, facts, short)
        spec = started_by(store, spec, actor)  # the prices are the check's, as `send` stores them
        template = Template(facts["template"])
        batch = batch_size(
            client.settings.batch,
            personalised=spec.personalised,
            provider_personalised=client.capabilities.personalised,
        )
        suppressed = store.suppressed()
        dropped: list[pd.DataFrame] = []
        # Read out of the database before the campaign's write transaction (SQLite: one writer, and a read
        # inside it would wait for it), into a spool on disk: one block in memory at a time.
        spool = BlockSpool()
        for block in kept.draft_blocks(store.engine, draft_id):
            out = block[PHONE].isin(suppressed)
            if out.any():
                dropped.append(block[out])
            if (~out).any():
                spool.add(block[~out])

        planned = plan(iter(spool), template, batch, list(spec.columns))
        count_dropped = lambda: sum(len(x) for x in dropped)  # noqa: E731
        campaign_id = store.create_campaign(
            spec, planned, rejected=lambda: facts["rejected"] + count_dropped()
        )
    except BaseException:
        kept.release_draft(store.engine, draft_id)
        raise
    kept.draft_sent(store.engine, draft_id, campaign_id)
    source = (facts.get("check") or {}).get("file")
    if source:  # the console kept the uploaded file for checking again; the rows are stored now
        Path(source).unlink(missing_ok=True)
    if dropped:
        _append_rejects(Path(spec.rejects_file), list(spec.columns), pd.concat(dropped), suppressed)
    view = store.campaign(campaign_id)
    assert view is not None
    summary = CampaignSummary(
        campaign_id,
        view.recipients,
        view.rejected,
        view.chunks,
        view.parts,
        spec.rejects_file,
        view.state,
        view.send_at,
    )
    summary = dataclasses.replace(summary, state=hand_over(settings, store, summary))
    return {**summary.as_json(), "draft": draft_id, "opted_out_since_check": count_dropped()}


def spec_of(facts: dict[str, Any]) -> CampaignSpec:
    """The CampaignSpec a draft stored (JSON) as a spec again, with its price tables."""
    raw = facts["spec"]
    return CampaignSpec(
        **{
            **raw,
            "send_at": datetime.fromisoformat(raw["send_at"]) if raw["send_at"] else None,
            "duplicate_since": (
                datetime.fromisoformat(raw["duplicate_since"]) if raw.get("duplicate_since") else None
            ),
            "columns": tuple(raw["columns"]),
            "route": tuple(raw["route"]),
            "prices": PriceTable.from_json(raw["prices"]) if raw["prices"] else None,
            "route_prices": {n: PriceTable.from_json(t) for n, t in raw["route_prices"].items()},
        }
    )


def _append_rejects(path: Path, others: list[str], rows: pd.DataFrame, suppressed: dict[str, str]) -> None:
    """Numbers that opted out between the check and the send, appended to the campaign's rejects file."""
    if not path.parent.is_dir():
        return
    with path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        for _, row in rows.iterrows():
            phone = str(row[PHONE])
            shown = "0" + phone[3:] if phone.startswith("+98") else phone
            why = f"{OPTED_OUT_SINCE}: {suppressed.get(phone) or 'opted out'}"
            cells = ["" if pd.isna(row[c]) else str(row[c]) for c in others if c in row]
            writer.writerow([int(row[ROW]), shown, why, *cells])
