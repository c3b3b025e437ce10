"""The send path's two statements run through psycopg's raw cursor (PostgreSQL).

The quick claim and the quick record (campaigns/store/quick.py) are built by SQLAlchemy like every statement,
once, then rendered once to PostgreSQL's own `$n` placeholders, their constants (state names, numbers) bound
once. Each run then costs what the driver must do and nothing else. Through SQLAlchemy's `execute` the same
two statements cost, per chunk, its compiled cache lookup, parameter processing and the rendering of the
`IN` lists anew, and psycopg's conversion of `%(name)s` placeholders, which it does not cache for statements
over 4 KB or 50 parameters (these are 6-8 KB with ~60): ~40 % of a worker's CPU with the GIL held
(py-spy, docs/benchmarks.md). Errors are SQLAlchemy's `DBAPIError`, a lost connection invalidated and said
so (`connection_invalidated`), as `Connection.execute` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import psycopg
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|__\[POSTCOMPILE_(\w+)\]")


@dataclass(frozen=True)
class RawStatement:
    """A statement rendered for PostgreSQL with `$n` placeholders: `names[n-1]` is the n-th parameter, bound
    from the caller's values when given, else from `constants` (what SQLAlchemy bound when it was built)."""

    sql: bytes
    names: tuple[str, ...]
    constants: Mapping[str, Any]

    @classmethod
    def of(cls, stmt: Any) -> RawStatement:
        """Render `stmt` (a SQLAlchemy statement) once. Raises ValueError for a text with a literal `%`."""
        compiled = stmt.compile(dialect=postgresql.psycopg.dialect())
        text = compiled.string
        if "%%" in text:
            raise ValueError("a literal % in a raw statement")
        constants = {name: _plain(bind.value) for name, bind in compiled.binds.items()}
        names: list[str] = []
        index: dict[str, int] = {}

        def placeholder(name: str) -> str:
            if name not in index:
                names.append(name)
                index[name] = len(names)
            return f"${index[name]}"

        def number(match: re.Match[str]) -> str:
            name, expanding = match.groups()
            if name is not None:
                return placeholder(name)
            # an IN list of constants (the allowed-from states): one parameter per value
            items = []
            for i, value in enumerate(constants[expanding]):
                constants[f"{expanding}_{i}"] = value
                items.append(placeholder(f"{expanding}_{i}"))
            return ", ".join(items)

        sql = _PLACEHOLDER.sub(number, text)
        return cls(sql.encode(), tuple(names), constants)

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional values of one run. Raises KeyError for a parameter neither given nor bound."""
        constants = self.constants
        return [params[n] if n in params else constants[n] for n in self.names]


def _plain(value: Any) -> Any:
    """Our enums as their values (what SQLAlchemy's String binds them as); lists of them too."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.value if isinstance(value, Enum) else value


def run(conn: Any, stmt: RawStatement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run `stmt`, a statement that returns rows, on the psycopg connection of `conn` (a pooled DBAPI connection,
    `Engine.raw_connection()`), in the mode it is in; psycopg prepares it from its fifth run, like any statement.
    Returns its rows as tuples in the statement's column order. Raises DBAPIError as SQLAlchemy would."""
    raw = conn.driver_connection
    values = stmt.values(params)
    try:
        with psycopg.RawCursor(raw) as cur:
            cur.execute(stmt.sql, values)
            return cur.fetchall()
    except psycopg.Error as exc:
        lost = raw.closed or raw.broken
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            stmt.sql.decode(), values, exc, psycopg.Error, connection_invalidated=lost
        ) from exc
