"""A draft as a person checks it (the console's check page): everything the preflight found, kept with
the draft so the page can be shown again, checked again with other options, test-sent, then sent.

- `check_facts(prepared, summary)`: what the page shows beyond the API's answer (each check with its
  severity and override, rejected rows by reason, the start and window, the file's columns as the
  placeholders it offers, the previews' reasons), plus what checking again needs (the options as asked,
  the kept file's path). `dispatcher.app.drafts.check_draft` stores it with the draft.
- `draft_view(settings, draft_id, principal)`: the draft as stored (NoDraft for another principal's).
- `recheck_request(view, changes)`: the draft's request with options changed (an override ticked, the
  message edited), over the same kept file: `check_draft` it again for a new draft.
- `test_draft(settings, draft_id, principal, phones, actor=)`: the previews to the numbers typed, as
  `send --test-to` does (`preflight.usecase.send_previews`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from campaigns.identity import Permission
from campaigns.preflight import PreflightSummary
from campaigns.store import apirequests as kept
from dispatcher.app.actors import Actor, acting, require
from dispatcher.app.campaign import Prepared, SendRequest
from dispatcher.app.common import BadInput, open_store
from dispatcher.config import AppSettings

OPTIONS = tuple(f.name for f in dataclasses.fields(SendRequest) if f.name not in ("file", "rejects"))


def check_facts(prepared: Prepared, summary: PreflightSummary) -> dict[str, Any]:
    """The check page's facts (see the module doc); JSON-ready."""
    request = prepared.request
    assert request is not None
    findings = sorted(summary.findings, key=lambda f: not f.refuses)
    return {
        "checks": [
            {"code": f.code.value, "severity": f.severity.value, "message": f.message, "override": f.override}
            for f in findings
        ],
        "refusals": len(summary.refusals),
        "recipients": summary.recipients,
        "rejected": prepared.loader.stats.rejected + prepared.skipped,
        "rejected_by_reason": dict(summary.rejected),
        "suppressed": summary.suppressed,
        "total_parts": summary.total_parts,
        "alphabet": summary.alphabet,
        "cost_source": summary.cost.source if summary.cost else None,
        "cost_hint": summary.cost_hint,
        "credit_needed": summary.credit.needed if summary.credit else None,
        "credit_note": summary.credit_note,
        "start": prepared.start.as_json() if prepared.start is not None else None,
        "columns": [c for c in prepared.loader.block_columns if c not in ("row", "phone")],
        "previews_why": [p.why for p in summary.previews],
        "notice": prepared.loader.notice,
        "file_name": request.file.name,
        "file": str(request.file),
        "options": {name: _plain(getattr(request, name)) for name in OPTIONS},
    }


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class DraftView:
    """A draft as stored: `answer` the API's check answer (`preflight`'s keys), `facts` what the draft is
    made of (`spec`, `template`, `rejected`, and `check_facts` under "check"), and its life."""

    id: int
    principal: str
    answer: dict[str, Any]
    facts: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    campaign_id: int | None

    @property
    def check(self) -> dict[str, Any]:
        return self.facts.get("check") or {}

    @property
    def rejects_file(self) -> Path:
        return Path(self.facts["spec"]["rejects_file"])

    @property
    def recipients(self) -> int:
        return int(self.check.get("recipients", 0))


def draft_view(settings: AppSettings, draft_id: int, principal: str) -> DraftView:
    """The draft, when it is `principal`'s (drafts are per principal); NoDraft otherwise or expired
    unsent."""
    from campaigns.clock import utcnow
    from dispatcher.app.drafts import NoDraft

    store = open_store(settings, read_only=True)
    record = kept.read_draft(store.engine, draft_id) if store is not None else None
    if (
        record is None
        or record.principal != principal
        or (record.campaign_id is None and record.expires_at < utcnow())
    ):
        raise NoDraft(f"no draft {draft_id} (drafts expire after 24 hours); upload the file again")
    return DraftView(
        record.id,
        record.principal,
        json.loads(record.summary),
        json.loads(record.request),
        record.created_at,
        record.expires_at,
        record.campaign_id,
    )


def recheck_request(view: DraftView, changes: dict[str, Any]) -> SendRequest:
    """The draft's request over its kept file, with `changes` (option name -> value) applied; BadInput
    when the file is gone (sent, or cleaned up) or an option is unknown."""
    check = view.check
    path = Path(check.get("file") or "")
    if not check or not path.is_file():
        raise BadInput("the uploaded file is no longer kept; upload it again")
    unknown = sorted(set(changes) - set(OPTIONS))
    if unknown:
        raise BadInput(f"unknown option {unknown[0]!r}; the options are: {', '.join(OPTIONS)}")
    options = {**check["options"], **changes}
    return SendRequest(file=path, **options)


def test_draft(
    settings: AppSettings, draft_id: int, principal: str, phones: list[str], *, actor: Actor | None = None
) -> list[int]:
    """Send the draft's previews to `phones` (one small test campaign per preview, as `send --test-to`);
    the test campaigns' ids. Needs SEND (Forbidden)."""
    from dispatcher.app.preflight.usecase import send_previews

    require(acting(actor), Permission.SEND)
    view = draft_view(settings, draft_id, principal)
    if view.campaign_id is not None:
        raise BadInput(f"draft {draft_id} was sent already as campaign {view.campaign_id}")
    from dispatcher.app.drafts import spec_of

    spec = spec_of(view.facts)
    previews = [
        (p["row"], p["text"], why)
        for p, why in zip(view.answer.get("preview", []), view.check.get("previews_why", []), strict=False)
    ]
    done = send_previews(settings, spec, settings.client(spec.provider), previews, phones)
    return [c.campaign for c in done.campaigns if c.campaign is not None]


def rejected_rows(path: Path, limit: int = 50) -> list[dict[str, str]]:
    """The first `limit` rows of a rejects file as `{"row", "value", "reason"}` (the file's own header);
    [] when there is no such file."""
    import csv

    if not path.is_file():
        return []
    out: list[dict[str, str]] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for record in csv.DictReader(fh):
            out.append({k: record.get(k) or "" for k in ("row", "value", "reason")})
            if len(out) >= limit:
                break
    return out
