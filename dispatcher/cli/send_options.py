"""The options of `send`, declared once: their flags, metavars, help and panels (`smsdispatch send --help`).

`send --help` groups its options in panels, each its own table: at 80 columns the help column of each is
wide enough for every word of its options' help (tests/test_cli_conventions.py checks it), so keep each
help short and its longest word (a setting's name, a file name) under about 30 characters. What an
option means lives in the field of `dispatcher.app.SendRequest` it fills.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workers.providers import NAMES

# What to send goes in Typer's own "Options" panel, first, with --help
WHAT, FILE_PANEL, WHEN, CHECKS, RUN = None, "The file", "When", "Checks and caps", "How to run it"
FLAG = ""  # a flag's metavar: nothing after it in the help (not `<bool>`)

File = Annotated[Path, typer.Argument(help="CSV or .xlsx of recipients")]
Provider = Annotated[
    str,
    typer.Option(
        "--provider",
        "-p",
        metavar="P",
        rich_help_panel=WHAT,
        help=f"{', '.join(NAMES)}; or a failover route: a comma list (ghasedak,mediapayamak) or a "
        "route named in the settings (\\[routes.NAME])",
    ),
]
Message = Annotated[
    str | None,
    typer.Option(
        "--message",
        "-m",
        metavar="TEXT",
        rich_help_panel=WHAT,
        help="the text; {column} fills in a column of the file",
    ),
]
MessageFile = Annotated[
    Path | None,
    typer.Option("--message-file", metavar="F", rich_help_panel=WHAT, help="the text, from a UTF-8 file"),
]
Sender = Annotated[
    str | None,
    typer.Option(
        "--sender",
        metavar="LINE",
        rich_help_panel=WHAT,
        help="line number (default SMSDISPATCH_<P>_SENDER)",
    ),
]
Name = Annotated[
    str | None, typer.Option("--name", metavar="NAME", rich_help_panel=WHAT, help="campaign name")
]
Column = Annotated[
    str | None,
    typer.Option(
        "--column", metavar="COL", rich_help_panel=FILE_PANEL, help="the phone column, if not found"
    ),
]
Sheet = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        metavar="S",
        rich_help_panel=FILE_PANEL,
        help="the sheet: its name or number (1 = first)",
    ),
]
HeaderRow = Annotated[
    int | None,
    typer.Option(
        "--header-row",
        metavar="N",
        rich_help_panel=FILE_PANEL,
        help="the header's row, as the spreadsheet numbers rows (default: the first with a phone column)",
    ),
]
Rejects = Annotated[
    Path | None,
    typer.Option(
        "--rejects",
        metavar="PATH",
        rich_help_panel=FILE_PANEL,
        help="where rejected rows go (default FILE.campaign-ID.rejects.csv; a dry run's "
        "FILE.dry-run.rejects.csv)",
    ),
]
At = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="WHEN",
        rich_help_panel=WHEN,
        help="when to start, Tehran time: 2026-12-04T10:00, 1405/09/10 10:00, Friday 10:00, "
        "جمعه ساعت ۱۰, tomorrow 09:00, فردا ساعت ۹, or 10:00 (the next one); echoed as resolved",
    ),
]
Window = Annotated[
    str | None,
    typer.Option(
        "--window",
        metavar="HH:MM-HH:MM",
        rich_help_panel=WHEN,
        help="daily send window, Tehran time (default SMSDISPATCH_SEND_WINDOW; 'any': none)",
    ),
]
CampaignType = Annotated[
    str,
    typer.Option(
        "--type",
        metavar="TYPE",
        rich_help_panel=CHECKS,
        help="promotional (opt-out token and window checked) or transactional",
    ),
]
AllowPartial = Annotated[
    bool,
    typer.Option(
        "--allow-partial",
        metavar=FLAG,
        rich_help_panel=CHECKS,
        help="send although the credit is below the estimate",
    ),
]
AllowDuplicate = Annotated[
    bool,
    typer.Option(
        "--allow-duplicate",
        metavar=FLAG,
        rich_help_panel=CHECKS,
        help="send although a campaign of the last 7 days had this list and text "
        "(SMSDISPATCH_DUPLICATE_WINDOW)",
    ),
]
IncludeBlacklisted = Annotated[
    bool,
    typer.Option(
        "--include-blacklisted",
        metavar=FLAG,
        rich_help_panel=CHECKS,
        help="also send to numbers an earlier promotional campaign learnt are on the operator's blacklist",
    ),
]
SkipRecent = Annotated[
    bool,
    typer.Option(
        "--skip-recent",
        metavar=FLAG,
        rich_help_panel=CHECKS,
        help="move numbers another campaign sent to within SMSDISPATCH_FREQUENCY_CAP to the rejects file",
    ),
]
Budget = Annotated[
    str | None,
    typer.Option(
        "--budget",
        metavar="RIAL",
        rich_help_panel=CHECKS,
        help="a hard cap in rial (50,000): it pauses before crossing it",
    ),
]
MaxParts = Annotated[
    str | None,
    typer.Option(
        "--max-parts",
        metavar="N",
        rich_help_panel=CHECKS,
        help="a hard cap in SMS parts: it pauses before crossing it",
    ),
]
OnUnknown = Annotated[
    str,
    typer.Option(
        "--on-unknown",
        metavar="hold|resend",
        rich_help_panel=CHECKS,
        help="recipients whose send could not be confirmed: hold them for a person (default) or resend",
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        metavar=FLAG,
        rich_help_panel=RUN,
        help="load and plan only (opt-outs applied); send and store nothing",
    ),
]
TestTo = Annotated[
    str | None,
    typer.Option(
        "--test-to",
        metavar="PHONES",
        rich_help_panel=RUN,
        help="send the previews to these numbers (comma-separated) only, as a test",
    ),
]
Yes = Annotated[
    bool,
    typer.Option("--yes", "-y", metavar=FLAG, rich_help_panel=RUN, help="do not ask (a terminal asks)"),
]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        metavar=FLAG,
        rich_help_panel=RUN,
        help="follow it until every recipient is final; exit 0 only if it completed with every outcome known",
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", metavar=FLAG, rich_help_panel=RUN, help="print JSON for machines")
]
