"""What every use case shares: the errors a caller can fix, the store (opened read-only or not), and
the provider names."""

from __future__ import annotations

import difflib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from campaigns.load import LoadError
from campaigns.preflight import PreflightSettingError
from campaigns.prices import UnpricedError
from campaigns.store import CampaignView, EmptyCampaign, Store
from campaigns.text import TemplateError
from campaigns.windows import WhenError
from dispatcher.app.budget import BudgetError
from dispatcher.app.preflight.gather import CredentialsRejected
from dispatcher.config import AppSettings
from workers.errors import ConfigurationError
from workers.providers import NAMES


class BadInput(ValueError):
    """Bad input or usage the caller can fix; the message is one line naming the problem and the fix."""


class NoCampaign(BadInput):
    """No campaign with that id in the database named in the message. `public`: the same without the
    database and the command to run, for a caller of the API or the console (who has neither)."""

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


class Refused(Exception):
    """A preflight check refused the campaign (the CLI: exit 3); nothing was stored. The message is the
    one line naming the check, what it found and the option that overrides it (`Finding.line()`);
    `check` and `override` name them apart (the API's 422 carries both)."""

    def __init__(self, message: str, check: str | None = None, override: str | None = None) -> None:
        super().__init__(message)
        self.check, self.override = check, override

    @classmethod
    def of(cls, finding: Any) -> Refused:
        """From a preflight `Finding` (campaigns.preflight.summary)."""
        return cls(finding.line(), str(finding.code.value), finding.override)


# A rejected key (CredentialsRejected) and a preflight setting that cannot be read are bad input too.
BAD_INPUT = (
    BadInput,
    LoadError,
    TemplateError,
    ConfigurationError,
    WhenError,
    EmptyCampaign,
    CredentialsRejected,
    PreflightSettingError,
    BudgetError,
    UnpricedError,
)


# ---- the database ------------------------------------------------------------------------------------
def database_label(url: str) -> str:
    """The database URL for people: its password hidden, a SQLite path made absolute."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        return f"sqlite:///{Path(parsed.database).resolve()}"
    return parsed.render_as_string(hide_password=True)


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there (a server database is asked when it is opened)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database).exists()
    return True


# One Store (one engine, one connection pool) per database in a process, its schema brought up to date
# once: `web` runs a use case per request, and each opened its own engine (a new pool, new connections:
# on PostgreSQL a connection's setup per request) and, before the schema check was cached, an Alembic
# upgrade. Keyed as `_schema_key` says, so a SQLite file made anew at the same path (another inode) gets a
# store, and a schema check, of its own; the file's inode is pinned by an open descriptor while its store
# is kept, so a new file can never be given the same inode. The last `KEPT` databases are kept (a test
# run opens hundreds); one dropped from the cache has its idle connections closed.
KEPT = 8
_STORES: OrderedDict[tuple[str, int | None], _Kept] = OrderedDict()
_LOCK = threading.Lock()


@dataclass
class _Kept:
    store: Store
    pin: int | None  # an open descriptor of the SQLite file, so its inode is not reused while kept


def _schema_key(url: str) -> tuple[str, int | None]:
    """The database as the cache knows it: a SQLite file by its absolute path and inode (a file made anew
    is another database), any other by its URL."""
    parsed = make_url(url)
    if _is_sqlite_file(url):
        assert parsed.database is not None
        path = Path(parsed.database).resolve()
        return str(path), (path.stat().st_ino if path.exists() else None)
    return url, None


def _is_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    return parsed.drivername.startswith("sqlite") and bool(parsed.database) and parsed.database != ":memory:"


def _forget_in_child() -> None:
    """After a fork: the parent's pools belong to the parent (closing their connections here would end
    the parent's sessions); the child opens its own."""
    for kept in _STORES.values():
        kept.store.engine.dispose(close=False)
    _STORES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def open_store(settings: AppSettings, *, read_only: bool = False) -> Store | None:
    """The process's store of the settings' database, its schema brought up to date the first time (see
    `KEPT` above). `read_only`: None when the database does not exist (a command that only looks never
    creates one). An in-memory SQLite database is opened anew at each call (each is its own database)."""
    url = settings.dispatch.database_url
    if read_only and not database_exists(url):
        return None
    if _is_sqlite_file(url) or not url.startswith("sqlite"):
        with _LOCK:
            key = _schema_key(url)
            kept = _STORES.get(key)
            if kept is not None:
                _STORES.move_to_end(key)
                return kept.store
            store = Store.from_url(url)
            store.migrate()  # makes a SQLite file that was not there: its key is known after this
            key = _schema_key(url)
            for stale in [k for k in _STORES if k[0] == key[0] and k != key]:  # the file it replaced
                _drop(_STORES.pop(stale))
            pin = os.open(key[0], os.O_RDONLY) if key[1] is not None else None
            _STORES[key] = _Kept(store, pin)
            while len(_STORES) > KEPT:
                _drop(_STORES.popitem(last=False)[1])
            return store
    store = Store.from_url(url)
    store.migrate()
    return store


def _drop(kept: _Kept) -> None:
    kept.store.engine.dispose()  # idle connections closed; one in use is closed when given back
    if kept.pin is not None:
        os.close(kept.pin)


MAX_ID = 2**63 - 1  # the largest id SQLite and PostgreSQL (bigint) hold


def campaign_view(settings: AppSettings, campaign_id: int) -> tuple[Store, CampaignView]:
    """The store and one campaign, read-only: NoCampaign, naming the database looked in, when it is not there
    (the database is never created here)."""
    store = open_store(settings, read_only=True)
    known = store is not None and 0 < campaign_id <= MAX_ID  # past a database integer: no such campaign
    view = store.campaign(campaign_id) if known else None
    if store is None or view is None:
        where = database_label(settings.dispatch.database_url)
        why = "" if store is not None else " (no database there)"
        raise NoCampaign(
            f"no campaign {campaign_id} in {where}{why}; see smsdispatch list", f"no campaign {campaign_id}"
        )
    return store, view


# ---- providers ---------------------------------------------------------------------------------------
def resolve_route(text: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """`--provider` as an ordered failover route: one provider, a comma list
    (`ghasedak,mediapayamak`), or the name of a route in the settings (`[routes.default] providers =
    [...]` in smsdispatch.toml, i.e. SMSDISPATCH_ROUTE_DEFAULT). Raises BadInput naming the fix."""
    names = [n for n in (x.strip() for x in text.split(",")) if n]
    if len(names) == 1 and names[0].lower() not in NAMES:
        named = env.get(f"SMSDISPATCH_ROUTE_{names[0].upper().replace('-', '_')}", "")
        if named.strip():
            names = [n for n in (x.strip() for x in named.split(",")) if n]
    if not names:
        raise BadInput("--provider is empty; name a provider, a comma list of them, or a route")
    route = tuple(resolve_provider(n) for n in names)
    if len(set(route)) != len(route):
        raise BadInput(f"--provider {text!r} names a provider twice; list each once")
    return route


def resolve_provider(name: str) -> str:
    """The registered provider name for `name`, case-insensitively; BadInput with a suggestion otherwise."""
    wanted = name.strip().lower()
    if wanted in NAMES:
        return wanted
    close = difflib.get_close_matches(wanted, NAMES, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise BadInput(f"unknown provider {name!r}; {hint}choose one of {', '.join(NAMES)}")
