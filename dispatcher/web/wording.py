"""The application layer's lines in the API's own words: its fields and endpoints, not the CLI's options
and commands.

The use cases (dispatcher/app/) speak as the CLI does, since the CLI came first and prints their lines
word for word: "to send anyway: --allow-partial", "continue it with: smsdispatch resume 7", "give
--message TEXT or --message-file FILE". A program calling the API has no such options; it has the form or
JSON fields named in the README's *The HTTP API* (`allow_partial`, `message`, …) and the endpoints. So
every line the API answers (an error's `message` and `override`, a preflight warning's `message`) goes
through `for_api`, which names each option by its field (a flag as `allow_partial=true`, an option with
its value's placeholder as `window=HH:MM-HH:MM`) and each command by its endpoint. The console names its
own controls instead (dispatcher/web/console/lines.py).
"""

from __future__ import annotations

import re
from typing import Any

# The CLI's options of `send` (and `resume`) the API takes as fields: each field is its option's name in
# snake case (`--allow-partial` -> `allow_partial`, as dispatcher/web/forms.py reads them).
OPTIONS = (
    "--allow-partial",
    "--allow-duplicate",
    "--skip-recent",
    "--include-blacklisted",
    "--dry-run",
    "--type",
    "--window",
    "--at",
    "--budget",
    "--max-parts",
    "--on-unknown",
    "--column",
    "--sheet",
    "--header-row",
    "--provider",
    "--sender",
    "--name",
    "--message",
)
FIELDS = {option: option[2:].replace("-", "_") for option in OPTIONS}
FLAGS = {"--allow-partial", "--allow-duplicate", "--skip-recent", "--include-blacklisted", "--dry-run"}
API = "/api/v1"

# Whole phrases first (their words would read wrong option by option), then commands, then options.
PHRASES = [
    (re.compile(r"give --message TEXT or --message-file FILE"), "give the field message"),
    (re.compile(r"leave --at out to send now"), "leave at out to send now"),
    (re.compile(r"leave --window out to send at any time"), "leave window out to send at any time"),
    (
        re.compile(r"drop --sheet \(it is for \.xlsx workbooks\)"),
        "leave sheet out (it is for .xlsx workbooks)",
    ),
    (re.compile(r" \(as in smsdispatch send --[a-z-]+\)"), ""),
]
COMMANDS = [
    (
        re.compile(r"continue it with: smsdispatch (?:run|watch) (\d+)"),
        rf"it goes on by itself: GET {API}/campaigns/\1",
    ),
    (re.compile(r"smsdispatch resume (\d+)"), rf"POST {API}/campaigns/\1/resume"),
    (re.compile(r"smsdispatch (?:run|watch|status) (\d+)(?: --wait)?"), rf"GET {API}/campaigns/\1"),
    (re.compile(r"smsdispatch (?:list|summary)"), f"GET {API}/campaigns"),
    (re.compile(r"smsdispatch optouts"), f"GET {API}/optouts"),
    (re.compile(r"smsdispatch providers check"), f"GET {API}/providers"),
]
# `--option PLACEHOLDER` (RIAL, N, COLUMN, NAME|NUMBER, HH:MM-HH:MM), `--type transactional`, `--budget 500`:
# one field=value.
VALUED = re.compile(
    r"(--[a-z][a-z-]*) ([A-Z][A-Z|_]*\b|HH:MM-HH:MM|transactional|promotional|hold|resend|\d[\d,]*\b)"
)
OPTION = re.compile(r"--[a-z][a-z-]*")


def for_api(line: str) -> str:
    """`line` with the CLI's options named as the API's fields and its commands as endpoints."""
    for pattern, words in PHRASES:
        line = pattern.sub(words, line)
    for pattern, words in COMMANDS:
        line = pattern.sub(words, line)
    line = VALUED.sub(
        lambda m: (
            f"{FIELDS.get(m.group(1), m.group(1))}={m.group(2)}" if m.group(1) in FIELDS else m.group(0)
        ),
        line,
    )

    def option(m: re.Match[str]) -> str:
        name = m.group(0)
        if name not in FIELDS:
            return name
        return f"{FIELDS[name]}=true" if name in FLAGS else FIELDS[name]

    return OPTION.sub(option, line)


def preflight_for_api(body: dict[str, Any]) -> dict[str, Any]:
    """An answer holding the preflight's keys, its warnings' messages in the API's words."""
    warnings = body.get("warnings")
    if isinstance(warnings, list):
        body["warnings"] = [
            {**w, "message": for_api(w["message"])} if isinstance(w, dict) and "message" in w else w
            for w in warnings
        ]
    return body
