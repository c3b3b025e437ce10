"""What `send` shows before a rial is spent (README, "Preflight"): the summary, its findings, and its JSON. Pure values.

`PreflightSummary.to_json()` is the contract for scripts: the keys `operators`, `parts_histogram`,
`cost`, `credit`, `warnings`, `preview` (the preflight's first keys, README "Preflight", `--json`) and, added after them,
`blacklisted` (the operator blacklist memory), which `send --json` adds to its object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from campaigns.operators import ESTIMATE_NOTE, Operator
from campaigns.prices import CURRENCY
from campaigns.text import Alphabet

__all__ = [
    "Blacklisted",
    "CampaignType",
    "Check",
    "Cost",
    "Credit",
    "Finding",
    "PreflightSummary",
    "Preview",
    "Severity",
]


class CampaignType(StrEnum):
    """`--type`: promotional campaigns get the promotional rules (opt-out token, send window)."""

    PROMOTIONAL = "promotional"
    TRANSACTIONAL = "transactional"


class Severity(StrEnum):
    WARN = "warn"  # shown; the campaign goes on
    REFUSE = "refuse"  # exit 3, nothing stored, unless the finding's override is given


class Check(StrEnum):
    """The preflight checks, by the code scripts and README use (README, "Preflight", **Checks**)."""

    CREDIT = "credit"  # credit below the estimate: refuse (--allow-partial)
    # same recipients and text as a campaign of the last SMSDISPATCH_DUPLICATE_WINDOW, finished or not:
    # refuse (--allow-duplicate)
    DUPLICATE = "duplicate"
    RECENT = "recent"  # recipients sent by another campaign within SMSDISPATCH_FREQUENCY_CAP (--skip-recent)
    BUDGET = "budget"  # --budget / --max-parts cover only part of the recipients: the campaign will pause
    OPT_OUT_TOKEN = "opt-out-token"  # promotional text without لغو11
    LINK = "link"  # a link in the text
    PARTS = "parts"  # more than SMSDISPATCH_MAX_PARTS parts per message
    EMPTY_PLACEHOLDER = "empty-placeholder"  # a placeholder empty for some rows
    NO_WINDOW = "no-window"  # promotional campaign with no send window
    ROUTE = "route"  # a provider of a failover route is unusable (unreachable, refused): skipped


@dataclass(frozen=True)
class Finding:
    """One check's verdict: `message` says what was found (one line), `override` the option or fix that
    lets the campaign go (e.g. "--allow-partial")."""

    code: Check
    severity: Severity
    message: str
    override: str

    @property
    def refuses(self) -> bool:
        return self.severity is Severity.REFUSE

    def line(self) -> str:
        """The one stderr line of a refusal (exit 3): the check, what it found, and its override."""
        return (
            f"refused by preflight check {self.code.value}: {self.message}; to send anyway: {self.override}"
        )


@dataclass(frozen=True)
class Preview:
    """One rendered message: `row` is the spreadsheet row (header = 1), `why` one of "first row",
    "longest text", "empty placeholder"."""

    row: int
    text: str
    parts: int
    why: str


@dataclass(frozen=True)
class Cost:
    """Estimated cost in rial: total and per operator, from a price table (`source` names it)."""

    estimate: float
    by_operator: dict[Operator, float]
    source: str
    currency: str = CURRENCY  # ISO 4217, as in status --json


@dataclass(frozen=True)
class Credit:
    """The account's balance in the unit its provider reports ("rial", or "sms" where the panel counts
    SMS parts); `needed` in that unit (None when no estimate exists), `enough` None when unknown."""

    balance: float
    unit: str
    needed: float | None
    enough: bool | None

    def to_json(self) -> dict[str, Any]:
        """The `credit` key of `send --json` and of a draft's check answer: balance, unit, enough."""
        return {"balance": self.balance, "unit": self.unit, "enough": self.enough}


@dataclass(frozen=True)
class Blacklisted:
    """The operator blacklist memory's part: recipients a delivery report marked blacklisted on an earlier
    promotional campaign within `memory_days`. `by_campaign`: the campaign that learnt it -> recipients;
    `skipped` True when they went to the rejects file (False: `--include-blacklisted` kept them);
    `saves`: rial their messages would have cost (None: no price known); `parts`: their SMS parts."""

    count: int
    by_campaign: dict[int, int]
    skipped: bool
    parts: int
    saves: float | None
    memory_days: float


@dataclass(frozen=True)
class PreflightSummary:
    """Everything known before anything is stored. Counts are recipients unless named parts.

    `rejected` maps a reason ("invalid", "duplicate", "opted out", "sent recently (campaign 7)") to rows;
    `alphabets` maps an alphabet to recipients; `parts_histogram` maps parts per message to recipients.
    """

    provider: str
    account: str
    sender: str
    recipients: int
    rejected: dict[str, int]
    suppressed: int
    operators: dict[Operator, int]
    parts_histogram: dict[int, int]
    total_parts: int
    alphabets: dict[Alphabet, int]
    cost: Cost | None
    credit: Credit | None
    previews: list[Preview]
    findings: list[Finding]
    fingerprint: str
    recent: int = 0
    cost_hint: str | None = None  # how to set a price, when none is known
    operators_note: str = ESTIMATE_NOTE
    skipped_recent: list[tuple[int, str, int]] = field(default_factory=list)  # (row, phone, campaign)
    credit_note: str | None = None  # why no credit is shown, e.g. "not checked: ghasedak unreachable"
    blacklisted: Blacklisted | None = None  # the blacklist memory's hits (None: none, or not looked at)
    # (row, phone, campaign that learnt it) of the recipients the blacklist memory skipped
    skipped_blacklisted: list[tuple[int, str, int]] = field(default_factory=list)

    @property
    def alphabet(self) -> str:
        """ "gsm7", "ucs2", "mixed", or "" for no recipients."""
        present = [a.value for a, n in self.alphabets.items() if n]
        return present[0] if len(present) == 1 else ("mixed" if present else "")

    @property
    def refusals(self) -> list[Finding]:
        return [f for f in self.findings if f.refuses]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.refuses]

    def to_json(self) -> dict[str, Any]:
        """The keys `send --json` adds (module docstring); refusals come first in `warnings`."""
        cost = None
        if self.cost is not None:
            cost = {
                "estimate": self.cost.estimate,
                "currency": self.cost.currency,
                "by_operator": {op.value: amount for op, amount in self.cost.by_operator.items()},
            }
        credit = None if self.credit is None else self.credit.to_json()
        findings = sorted(self.findings, key=lambda f: not f.refuses)
        return {
            "operators": {op.value: n for op, n in self.operators.items()},
            "parts_histogram": {str(parts): n for parts, n in sorted(self.parts_histogram.items())},
            "cost": cost,
            "credit": credit,
            "warnings": [{"code": f.code.value, "message": f.message} for f in findings],
            "preview": [{"row": p.row, "text": p.text, "parts": p.parts} for p in self.previews],
            "blacklisted": None
            if self.blacklisted is None
            else {
                "recipients": self.blacklisted.count,
                "skipped": self.blacklisted.skipped,
                "saves": self.blacklisted.saves,
                "by_campaign": {str(c): n for c, n in sorted(self.blacklisted.by_campaign.items())},
            },
        }
