"""`pause`, `resume`, `cancel`: one use case (`dispatcher.app.control`), three commands."""

from __future__ import annotations

from typing import Annotated

import typer

from dispatcher import app
from dispatcher.app import Control
from dispatcher.cli.common import CampaignId, cli, cli_settings, out


def _control(campaign_id: int, action: Control, **caps: str | None) -> None:
    settings = cli_settings()
    done = app.control(settings, campaign_id, action, **caps)
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
def resume(
    campaign_id: CampaignId,
    budget: Annotated[
        str | None, typer.Option("--budget", help="raise the cap in rial (a campaign paused at its budget)")
    ] = None,
    max_parts: Annotated[str | None, typer.Option("--max-parts", help="raise the cap in SMS parts")] = None,
) -> None:
    """Continue a paused campaign where it stopped (embedded: the rest is sent here, or by a live serve)."""
    _control(campaign_id, Control.RESUME, budget=budget, max_parts=max_parts)


@cli.command()
def cancel(campaign_id: CampaignId) -> None:
    """Cancel: unsent recipients become `cancelled`; a chunk already at the provider finishes."""
    _control(campaign_id, Control.CANCEL)
