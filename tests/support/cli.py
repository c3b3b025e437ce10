"""Running `smsdispatch` in this process, as a person would type it: (exit code, stdout, stderr)."""

from __future__ import annotations

from dispatcher.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:  # noqa: ANN001 - pytest's capsys
    """`smsdispatch ARGV` through `main` (exit codes and one-line errors included), output captured."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
