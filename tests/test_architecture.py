"""Rules of the house that code review alone would not keep: import direction, the feature table."""

from __future__ import annotations

import ast
from pathlib import Path

from dispatcher.reports.featurematrix import BEGIN, END, render

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"campaigns": ("workers", "dispatcher"), "workers": ("dispatcher",)}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
    return mods


def test_imports_run_one_way():
    bad = []
    for package, forbidden in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            for mod in imported_modules(path):
                if mod.split(".")[0] in forbidden:
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert bad == []


def test_feature_table_in_docs_matches_the_code():
    text = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == render(), (
        "docs/providers.md is stale: run python -m dispatcher.reports.featurematrix and paste its output"
    )


# Inside dispatcher/: front ends (cli, web) over the application layer (app) over the engines and the
# reports. A layer never imports one above it; config, humane and the sandbox sit beside them all.
DISPATCHER_LAYERS = {
    "dispatcher.app": ("dispatcher.cli", "dispatcher.web", "dispatcher.demo"),
    "dispatcher.engine": ("dispatcher.app", "dispatcher.cli", "dispatcher.web", "dispatcher.demo"),
    "dispatcher.reports": (
        "dispatcher.app",
        "dispatcher.cli",
        "dispatcher.web",
        "dispatcher.engine",
        "dispatcher.demo",
    ),
    "dispatcher.cli": ("dispatcher.web",),
    "dispatcher.web": ("dispatcher.cli",),
}


def test_dispatcher_layers_run_one_way():
    bad = []
    for package, forbidden in DISPATCHER_LAYERS.items():
        folder = ROOT / package.replace(".", "/")
        for path in folder.rglob("*.py"):
            for mod in imported_modules(path):
                if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert bad == []


def test_dispatcher_has_no_loose_modules_but_its_entry_points():
    loose = sorted(p.name for p in (ROOT / "dispatcher").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "config.py", "humane.py"]
