"""Running `smsdispatch` in this process, as a person would type it: (exit code, stdout, stderr), and the
sandbox and environment such a run talks to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dispatcher.cli import main
from dispatcher.sandbox.core import SandboxState, sandbox_env
from dispatcher.sandbox.server import RunningSandbox, start


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001 - pytest's capsys
    """`smsdispatch ARGV` through `main` (exit codes and one-line errors included), output captured."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextmanager
def cli_sandbox(
    tmp_path: Path,
    monkeypatch,  # noqa: ANN001 - pytest's monkeypatch
    *,
    database_url: str,
    seed: int = 5,
    final_after_s: float = 0.1,
    poll_intervals: str = "0.1,0.3",
    **env_extra: str,
) -> Iterator[RunningSandbox]:
    """A sandbox on loopback and this process's environment pointed at it for the CLI: the providers' URLs
    and keys, `database_url`, status polls every `poll_intervals` seconds, embedded mode (no broker),
    `tmp_path` as the working folder, and `env_extra` (e.g. SMSDISPATCH_GHASEDAK_PRICE). Yields the
    running sandbox; stops it afterwards."""
    running = start(SandboxState(seed=seed, final_after_s=final_after_s))
    env = sandbox_env(running.url)
    env["SMSDISPATCH_DATABASE_URL"] = database_url
    env["SMSDISPATCH_POLL_INTERVALS"] = poll_intervals
    env.update(env_extra)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SMSDISPATCH_BROKER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        yield running
    finally:
        running.stop()
