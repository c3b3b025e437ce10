"""The web application: `create_app(settings)` builds the FastAPI app that `smsdispatch web` serves.

- `/api/v1/…`: the JSON API (routers by resource in `dispatcher.web.routers`), its OpenAPI at
  `/api/v1/openapi.json` (3.1, as FastAPI writes it, declaring the bearer key) and a docs page at
  `/api/v1/docs`: Swagger UI 5 (the first to read OpenAPI 3.1), served from
  `dispatcher/web/static/vendor/swagger-ui/` (no CDN), its Authorize button taking the key.
- `/healthz`: answers at once, whatever the thread pool is doing (a million-row upload included).
- The console's pages at `/` (dispatcher/web/console), unless `console=False`.
- Room for more: `create_app(..., extra_routers=[...])` mounts more routers (pages, sessions)
  beside the API; the API itself never reads a cookie (dispatcher/web/auth.py).

The `serve` loop of embedded mode starts and stops with the app (`dispatcher.web.service.Background`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from dispatcher import __version__
from dispatcher.config import AppSettings
from dispatcher.web import errors
from dispatcher.web.limits import BodyCap
from dispatcher.web.routers import campaigns, drafts, people, reports

API = "/api/v1"
log = logging.getLogger("dispatcher.web")


def create_app(
    settings: AppSettings,
    *,
    background: bool = True,
    extra_routers: Sequence[APIRouter] = (),
    console: bool = True,
) -> FastAPI:
    """The app over `settings`. `background`: run the embedded mode's serve loop in this process (when
    no live `serve` does and no broker is set); tests of the API alone pass False. `console`: the web
    console's pages beside the API (dispatcher/web/console)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from dispatcher.app import open_store

        open_store(settings)  # the process's store, its schema brought up to date before any request
        from dispatcher.app.identity import bootstrap_admin

        created = bootstrap_admin(settings)  # the first admin, from SMSDISPATCH_ADMIN_PASSWORD_FILE
        if created:
            log.info("created the first admin user %r", created)
        runner = None
        if background:
            from dispatcher.web.service import Background

            runner = Background(settings)
            app.state.mode = runner.start()
            log.info("%s", app.state.mode)
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()

    app = FastAPI(
        title="smsdispatch API",
        version=__version__,
        description="Bulk SMS campaigns for Iranian providers. Authenticate with `Authorization: Bearer KEY`.",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.mode = "not started"
    errors.install(app)
    app.add_middleware(BodyCap)  # no body past 1 MB is read, but the uploads' (dispatcher/web/limits.py)
    api = APIRouter(prefix=API)
    for module in (campaigns, reports, drafts, people):
        api.include_router(module.router)
    app.include_router(api)
    for router in extra_routers:
        app.include_router(router)
    if console:
        from dispatcher.web.console import install

        install(app)
    _docs(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"ok": True, "version": __version__, "mode": app.state.mode})

    from dispatcher.web.monitoring import install as monitoring

    monitoring(app, settings)  # /metrics, /readyz, the HTTP metrics by route template (docs/monitoring.md)
    return app


def _docs(app: FastAPI) -> None:
    """The docs page, its Swagger UI copied from the swagger-ui-dist npm package (served here, no CDN;
    dispatcher/web/static/vendor/README.md), and the bearer key declared in the OpenAPI document."""
    from fastapi.openapi.utils import get_openapi

    assets = Path(__file__).parent / "static" / "vendor" / "swagger-ui"
    app.mount(f"{API}/docs/assets", StaticFiles(directory=str(assets)), name="swagger-assets")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key of `smsdispatch keys create` (smsd_…)",
                }
            }
            schema["security"] = [{"bearer": []}]
            _error_answers(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get(f"{API}/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url=f"{API}/openapi.json",
            title="smsdispatch API",
            swagger_js_url=f"{API}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{API}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{API}/docs/assets/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": False},
        )


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["kind", "message"],
            "properties": {
                "kind": {
                    "type": "string",
                    "enum": [
                        "bad_input", "unauthenticated", "forbidden", "not_found", "conflict", "too_large",
                        "refused", "throttled", "provider", "internal",
                    ],
                },
                "message": {"type": "string"},
                "check": {"type": "string", "description": "refused: the preflight check"},
                "override": {"type": "string", "description": "refused: how to send anyway"},
                "retry_after": {"type": "integer", "description": "throttled: seconds"},
                "provider": {
                    "type": "string",
                    "description": "bad_input: the provider that has no credential on the server",
                },
            },
        }
    },
}  # fmt: skip


def _error_answers(schema: dict[str, Any]) -> None:
    """Every operation's errors as the API answers them (dispatcher/web/errors.py): `{"error": {"kind",
    "message", …}}`, a bad parameter included (400, never FastAPI's default 422 `detail` list, since 422
    here means a preflight refusal)."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(name, None)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            answers.pop("422", None)
            answers["default"] = {
                "description": "an error (400 bad_input, 401, 403, 404, 409, 413, 422 refused, 429, 502): "
                "see the README's *Errors*",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }


def from_environment() -> FastAPI:
    """The app over the settings of the environment (and `.env`/`smsdispatch.toml`), as the CLI reads
    them: what `smsdispatch web` serves."""
    from dispatcher.config import load_config

    return create_app(AppSettings.from_env(load_config()))
