"""`pause`, `resume`, `cancel`: one use case (`dispatcher.app.control`), three commands."""

from __future__ import annotations

from dispatcher import app
from dispatcher.app import Control
from dispatcher.cli.common import CampaignId, cli, cli_settings, out


def _control(campaign_id: int, action: Control) -> None:
    done = app.control(cli_settings(), campaign_id, action)
    out.print(f"campaign {campaign_id}: {done.state}")
    if done.needs_run:
        out.print(f"to send its remaining chunks here: smsdispatch run {campaign_id}")


@cli.command()
def pause(campaign_id: CampaignId) -> None:
    """Stop sending at the next chunk."""
    _control(campaign_id, Control.PAUSE)


@cli.command()
def resume(campaign_id: CampaignId) -> None:
    """Continue a paused campaign where it stopped."""
    _control(campaign_id, Control.RESUME)


@cli.command()
def cancel(campaign_id: CampaignId) -> None:
    """Cancel: unsent recipients become `cancelled`; a chunk already at the provider finishes."""
    _control(campaign_id, Control.CANCEL)
