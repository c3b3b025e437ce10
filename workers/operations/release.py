"""Kept for old imports: `release_due` is step 1 of the housekeeping pass (workers.operations.housekeeping)."""

from workers.operations.housekeeping import Released, release_due

__all__ = ["Released", "release_due"]
