"""Everything a worker does: provider clients, statuses, errors, rate limits and the operations.

Imports `campaigns`, never `dispatcher` (shared/DESIGN.md).
"""
