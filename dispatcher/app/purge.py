"""`smsdispatch purge --older-than DAYS` (and the API's, for admins): remove the phone numbers, file
columns and rendered texts of the recipients of campaigns that finished more than DAYS days ago, keeping
their counts, costs and audit trail (campaigns/store/purge.py). The suppression list is never purged.
A purged campaign's rejects file (it holds numbers) is deleted too, unless a campaign not purged names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from campaigns.clock import utcnow
from campaigns.identity import Permission
from dispatcher.app.actors import Actor, acting, identity_store, require
from dispatcher.app.common import BadInput
from dispatcher.config import AppSettings


@dataclass(frozen=True)
class PurgeResult:
    """What a purge did: the campaigns purged, recipients whose data was removed, rejects files deleted."""

    campaigns: list[int]
    recipients: int
    files_removed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaigns": self.campaigns,
            "recipients": self.recipients,
            "files_removed": self.files_removed,
        }


def purge(settings: AppSettings, older_than_days: int, *, actor: Actor | None = None) -> PurgeResult:
    """Purge the campaigns that finished (completed, cancelled, failed) more than `older_than_days` ago.
    BadInput for a negative number; Forbidden without the MANAGE permission."""
    who = acting(actor)
    require(who, Permission.MANAGE)
    if older_than_days < 0:
        raise BadInput(f"--older-than {older_than_days}: give a number of days, 0 or more")
    store = identity_store(settings)
    done = [
        store.purge_campaign(cid, who.who)
        for cid in store.purge_due(utcnow() - timedelta(days=older_than_days))
    ]
    in_use = store.rejects_in_use()
    removed = []
    for path in sorted({p.rejects_file for p in done if p.rejects_file} - in_use):
        try:
            Path(path).unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # not ours to remove (moved, permissions): say so, purge the rest
            removed.append(f"{path}: not removed ({exc.strerror})")
    return PurgeResult([p.campaign_id for p in done], sum(p.recipients for p in done), removed)
