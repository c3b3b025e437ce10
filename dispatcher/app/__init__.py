"""The use cases under every front end: prepare, create, start, control, check providers, report.

Modules by concern: `campaign` (prepare, dry_run, create, start, control), `preflight` (the checks
before anything is stored, one pass over the file; the test send of the previews), `views` (status, list,
report, summary), `accounts` (check providers, the suppression list), `contacts` (phonebook pushes), `common` (errors, the store, provider
names). Import the names from here: `from dispatcher import app; app.prepare(...)`.

Plain functions with explicit settings (`AppSettings`): nothing here reads `os.environ`, parses
arguments or prints. The CLI (`dispatcher.cli`) parses and prints around them; the demo and a later
web page or service call the same functions. Results are small dataclasses. How a campaign is
started and followed (embedded or distributed) is chosen in `dispatcher.app.modes`, in one place.

Errors: `BadInput` (and `NoCampaign`) for anything the caller can fix (the CLI: one line, exit 2),
besides the campaigns/workers errors listed in `BAD_INPUT`; `Refused` when a preflight check refused
the campaign (the CLI: one line, exit 3; nothing stored); `ProviderUnreachable` when no provider of the
send can be reached (the CLI: one line naming the URL and the setting, exit 1; nothing stored).
"""

from dispatcher.app.accounts import (
    ProviderCheck,
    SuppressionChange,
    Suppressions,
    check_providers,
    phones_or_fail,
    suppress,
    suppressions,
    unsuppress,
)
from dispatcher.app.campaign import (
    CampaignSummary,
    Control,
    ControlResult,
    OnUnknown,
    Prepared,
    SendRequest,
    control,
    create,
    dry_run,
    interrupted,
    mode_for,
    prepare,
    start,
)
from dispatcher.app.common import (
    BAD_INPUT,
    BadInput,
    NoCampaign,
    Refused,
    campaign_view,
    database_exists,
    database_label,
    open_store,
    resolve_provider,
)
from dispatcher.app.contacts import PushRequest, PushSummary, contact_groups, contact_list, push_contacts
from dispatcher.app.modes import StartResult
from dispatcher.app.preflight.gather import ProviderUnreachable
from dispatcher.app.preflight.usecase import TestSend, preflight, test_send
from dispatcher.app.views import (
    CampaignList,
    CampaignStatus,
    ReportResult,
    list_campaigns,
    report,
    status,
    summary,
    summary_totals,
    waiting_for,
)
from dispatcher.config import AppSettings

__all__ = [
    "BAD_INPUT",
    "AppSettings",
    "BadInput",
    "CampaignList",
    "CampaignStatus",
    "CampaignSummary",
    "Control",
    "ControlResult",
    "NoCampaign",
    "OnUnknown",
    "Prepared",
    "ProviderCheck",
    "ProviderUnreachable",
    "Refused",
    "ReportResult",
    "SendRequest",
    "StartResult",
    "TestSend",
    "SuppressionChange",
    "Suppressions",
    "campaign_view",
    "check_providers",
    "control",
    "create",
    "database_exists",
    "database_label",
    "dry_run",
    "interrupted",
    "list_campaigns",
    "mode_for",
    "open_store",
    "phones_or_fail",
    "preflight",
    "prepare",
    "report",
    "summary",
    "summary_totals",
    "waiting_for",
    "resolve_provider",
    "start",
    "status",
    "suppress",
    "suppressions",
    "test_send",
    "unsuppress",
]
__all__ += ["PushRequest", "PushSummary", "contact_groups", "contact_list", "push_contacts"]  # contacts.py
