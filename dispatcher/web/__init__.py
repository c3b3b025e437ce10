"""The web front end: `smsdispatch web` serves the JSON API at /api/v1 (and, later, the console).

Modules: `app` (the FastAPI app factory, docs page, /healthz), `routers/` (one module per resource:
campaigns, reports, drafts, people), `auth` (bearer keys only), `forms` (uploads streamed to disk),
`idempotency` (Idempotency-Key claimed in the database), `errors` (the error bodies), `service` (the
embedded mode's serve loop in this process). Like the CLI it only parses, calls `dispatcher.app` and
renders.
"""

from dispatcher.web.app import create_app

__all__ = ["create_app"]
