"""The loader's error, its counts and the names every part of it shares."""

from __future__ import annotations

from dataclasses import dataclass, field

ROW, PHONE = "row", "phone"
FIRST_DATA_ROW = 2  # the first data row when the header is row 1 (title rows above it move both down)


class LoadError(ValueError):
    """The recipients file cannot be used; the message is one line naming the problem and the fix."""


@dataclass
class LoadStats:
    """Counts for one load. `rejected` includes `duplicates` and `suppressed`; rows = valid + rejected.

    Blank rows (every cell empty) are not rows: they are in none of the counts.
    """

    rows: int
    valid: int
    rejected: int
    duplicates: int
    suppressed: int
    encoding: str
    phone_column: str
    columns: list[str] = field(default_factory=list)
