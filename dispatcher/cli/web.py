"""`smsdispatch web`: the web console and the HTTP API (dispatcher/web), served by uvicorn in one process.

Embedded mode: the same process also runs the `serve` loop (unless a live `serve` does). Distributed
mode: it stores and rings the workers; run as many as you like behind a proxy. `--trusted-proxies`
lists the addresses (or CIDR networks) whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed
(uvicorn's proxy headers support); nobody's by default.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from dispatcher.app import BadInput
from dispatcher.cli.common import cli, cli_settings


def trusted_list(text: str | None) -> list[str]:
    """`--trusted-proxies 10.0.0.0/8,127.0.0.1` as a list; BadInput naming a bad entry."""
    items = [x.strip() for x in (text or "").split(",") if x.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise BadInput(
                f"--trusted-proxies: {item!r} is not an address or network; write e.g. 127.0.0.1,10.0.0.0/8"
            ) from None
    return items


@cli.command()
def web(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on (0: any free one)")] = 8080,
    trusted_proxies: Annotated[
        str | None,
        typer.Option(
            "--trusted-proxies",
            metavar="CIDRS",
            help="comma list of proxy addresses or networks whose X-Forwarded-For/-Proto are believed",
        ),
    ] = None,
) -> None:
    """Serve the web console at / and the JSON API at /api/v1 (docs at /api/v1/docs); in embedded mode also
    send, as `serve` does."""
    import logging
    import signal
    import sys

    import uvicorn

    from dispatcher.engine.eventlog import DedupHandler
    from workers.logs import configure

    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port}: give a port from 1 to 65535 (0: any free one)")
    proxies = trusted_list(trusted_proxies)
    cli_settings()  # a bad setting is one line here, before the server starts
    configure("web", DedupHandler(sys.stderr))  # JSON lines with SMSDISPATCH_LOG_FORMAT=json; redacted
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn finishes the requests in flight and the app's shutdown (the serve loop lets its chunks in
    # flight finish), then raises the signal again to the handler it found: ours makes that exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    # By name: the front ends do not import each other (tests/test_architecture.py); uvicorn calls the
    # factory, which reads the same settings from the environment.
    uvicorn.run(
        "dispatcher.web.app:from_environment",
        factory=True,
        host=host,
        port=port,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
