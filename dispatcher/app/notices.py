"""The one-line notices about a campaign just stored or started, chosen once for every front end: `send`
and `run` print them on stderr, the console shows them on the campaign's page (same words).

- `after_create(settings, store, summary, mode)`: a scheduled campaign (when, and what starts it), a
  campaign sent here that waits for its send window (when it opens).
- `handed_to(campaign_id, service)`: the campaign went to a live `smsdispatch serve`.
- `waiting_here(settings, campaign_id, send_at)`: `run` waits in this process for a scheduled campaign.
- `reports_hint(campaign_id)`: an embedded `send` sent it; what collects its delivery reports.
- `held_unknown(campaign_id, unknown, total)`: a followed campaign ended with recipients held `unknown`;
  what that means and what to do.
"""

from __future__ import annotations

from datetime import datetime

from campaigns.states import CampaignState
from campaigns.store import Store
from dispatcher.app.campaign import CampaignSummary
from dispatcher.app.modes import Mode
from dispatcher.app.views import waiting_for
from dispatcher.config import AppSettings


def after_create(settings: AppSettings, store: Store, summary: CampaignSummary, mode: Mode) -> list[str]:
    """What to tell the person about a campaign just stored, before it is started (none, or one line)."""
    if summary.campaign is None or not summary.recipients:
        return []
    if (
        summary.state == CampaignState.SCHEDULED
        and summary.send_at is not None
        and mode.kind != "distributed"
    ):
        where = "sending starts here then" if mode.sends_here else "`smsdispatch serve` starts it"
        return [
            f"campaign {summary.campaign} is scheduled for {settings.show_time(summary.send_at)}; {where}"
        ]
    if mode.sends_here and summary.state == CampaignState.RUNNING:  # a closed window: say so
        waiting = waiting_for(store, summary.campaign)
        if waiting is not None and waiting.reason == "window":
            return [
                f"campaign {summary.campaign} is {waiting.detail}; it is sent here then "
                f"(Ctrl-C leaves it for `smsdispatch serve` or `smsdispatch run {summary.campaign}`)"
            ]
    return []


def handed_to(campaign_id: int, service: str) -> str:
    """`campaign 7 handed to `smsdispatch serve` (pid 4242 on host-a)`."""
    return f"campaign {campaign_id} handed to `smsdispatch serve` ({service})"


def reports_hint(campaign_id: int) -> str:
    """After a plain embedded `send`: the messages are out, and what collects their delivery reports."""
    return (
        f"campaign {campaign_id} is sent; its delivery reports are collected by `smsdispatch serve` (keep "
        f"one running) or `smsdispatch poll --until-done`; `smsdispatch status {campaign_id}` shows them "
        "(`send --wait` waits for them)"
    )


def held_unknown(campaign_id: int, unknown: int, total: int) -> str | None:
    """After `send --wait`, `run --wait` or `watch`: recipients held `unknown` (the provider could not say
    whether their send went out, and it cannot be asked: README, "Exit codes"), what that means and what
    to do; None when there are none."""
    if not unknown:
        return None
    if unknown == total:
        who = "its one recipient is" if total == 1 else f"all {total:,} recipients are"
    else:
        who = f"{unknown:,} of {total:,} recipients {'is' if unknown == 1 else 'are'}"
    return (
        f"campaign {campaign_id} finished, but {who} unknown: the provider could not say whether their "
        "messages went out (they may have been sent and charged), so they are held, not sent again. Look "
        f"them up in the provider's panel (its sent box) before sending to them again; `smsdispatch report "
        f"{campaign_id} --out report.csv` lists them with the reason; `smsdispatch status {campaign_id}` later "
        "shows any late answer"
    )


def waiting_here(settings: AppSettings, campaign_id: int, send_at: datetime) -> str:
    """`run` in embedded mode, for a scheduled campaign: it waits for the time in this process."""
    return (
        f"campaign {campaign_id} is scheduled for {settings.show_time(send_at)}; waiting for it "
        "here (Ctrl-C stops waiting; `smsdispatch serve` would start it without a terminal)"
    )


def for_campaign(settings: AppSettings, campaign_id: int) -> list[str]:
    """`after_create`'s notice for a stored campaign as it stands now (the console's campaign page)."""
    from dispatcher.app.campaign import mode_for
    from dispatcher.app.common import campaign_view

    store, view = campaign_view(settings, campaign_id)
    summary = CampaignSummary(
        view.id,
        view.recipients,
        view.rejected,
        view.chunks,
        view.parts,
        view.rejects_file,
        view.state,
        view.send_at,
    )
    return after_create(settings, store, summary, mode_for(settings, store))
