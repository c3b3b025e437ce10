"""`pause`, `resume`, `cancel`: one use case (`dispatcher.app.control`), three commands."""

from __future__ import annotations

from dispatcher import app
from dispatcher.app import Control
from dispatcher.cli.common import CampaignId, cli, cli_settings, out


def _control(campaign_id: int, action: Control) -> None:
    settings = cli_settings()
    done = app.control(settings, campaign_id, action)
    out.print(f"campaign {campaign_id}: {done.state}")
    if done.needs_run:  # embedded, nothing else sends it: `resume` sends the rest here
        from dispatcher.cli.campaign import start_and_show

        store, _ = app.campaign_view(settings, campaign_id)
        result = start_and_show(settings, app.mode_for(settings, store), campaign_id, follow=False)
        out.print(f"campaign {campaign_id}: {result.state}")


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
