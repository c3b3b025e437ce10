"""What Ctrl-C (or a closed terminal) on `send`/`run` says: the state it left and the command that goes on.

Pure: the CLI gives the campaign's state and counts after the chunks in flight finished, and prints
the one line this returns.
"""

from __future__ import annotations

from datetime import datetime

from campaigns.liveness import Heartbeat, clock
from campaigns.store.sending import resume_command


def interrupted_line(
    campaign_id: int,
    state: str,
    *,
    sent: int,
    total: int,
    now: datetime,
    wait: bool = True,
    reason: str | None = None,
    send_at: datetime | None = None,
    service: Heartbeat | None = None,
) -> str:
    """One line: 'interrupted: campaign 13 left running with 240 of 4000 sent and nothing sending it;
    to go on: smsdispatch run 13 --wait (or start smsdispatch serve)'.

    sent/total: recipients no longer pending, and all of them; wait: the interrupted command had --wait
    (the continuing command gets it too); service: a live `serve` on the same database, which goes on
    by itself (then the line says how to follow it instead).
    """
    run = f"smsdispatch run {campaign_id}{' --wait' if wait else ''}"
    if service is not None and state in ("running", "scheduled"):
        return (
            f"stopped following; campaign {campaign_id} is {state} and `smsdispatch serve` (pid {service.pid} "
            f"on {service.host}) goes on with it; follow it: smsdispatch watch {campaign_id}"
        )
    if state == "running":
        left = (
            f"{sent} of {total} sent"
            if sent < total
            else f"all {total} sent, delivery reports still to collect"
        )
        return (
            f"interrupted: campaign {campaign_id} left running with {left} and nothing sending it; "
            f"to go on: {run} (or start smsdispatch serve)"
        )
    if state == "scheduled":
        when = f" for {clock(send_at, now)}" if send_at else ""
        return (
            f"interrupted: campaign {campaign_id} is scheduled{when} and nothing will start it; "
            f"to go on: {run} (or start smsdispatch serve)"
        )
    if state == "paused":
        why = f" ({reason.rstrip('.')})" if reason else ""
        return f"interrupted: campaign {campaign_id} is paused{why}; to go on: {resume_command(campaign_id, reason)}"
    return f"interrupted: campaign {campaign_id} is {state}; nothing is left to send (smsdispatch status {campaign_id})"
