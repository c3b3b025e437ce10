"""Local first, then the network, through the CLI as a person types it: every check of the file, the text
and the options runs before any provider call (exit 2 naming the file's problem even with the provider
unreachable), a dry run works offline, an unreachable provider is one plain line naming its URL and
setting (exit 1), a route skips an unusable provider and sends everything through the next (the
sandbox's ledger: each number once), and a refused send leaves no database behind.

"Unreachable" is a real closed port on loopback: the connection is refused, as with a provider down.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.test_e2e import cli_env  # noqa: F401 - the fixture: the sandbox, a SQLite store, the environment

TEXT = "سلام {name}، حراج پاییزه. لغو۱۱"


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nothing listens on (a port taken from the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ghasedak/v2"


@pytest.fixture
def sandboxed(cli_env):  # noqa: F811 - the e2e fixture
    return cli_env


@pytest.fixture
def ghasedak_down(sandboxed, closed_url, monkeypatch):
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_URL", closed_url)
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_TIMEOUT", "1,1")
    return sandboxed


def database(tmp_path: Path) -> Path:
    return tmp_path / "e2e.db"  # SMSDISPATCH_DATABASE_URL of the e2e fixture


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def send(file: Path, capsys, *extra: str, provider: str = "ghasedak") -> tuple[int, str, str]:
    return run_cli(["send", str(file), "-p", provider, "-m", TEXT, "--window", "any", *extra], capsys)


def write_rows(path: Path, n: int, *, start: int = 0) -> Path:
    lines = ["mobile,name", *(f"0912{start + i:07d},name{i}" for i in range(n))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---- the file's problem is named first, whatever the network ------------------------------------------
@pytest.mark.parametrize(
    "name, content, expected",
    [
        (
            "unclosed.csv",
            'mobile,name\n"09121234567,ali\n09121234568,reza\n',
            "line 2 opens a quote",
        ),
        ("header-only.csv", "mobile,name\n", "no rows under the header"),
        ("invalid.csv", "mobile,name\nabc,x\n12,y\n", "no valid recipients, 2 rows rejected"),
        ("long.csv", "mobile,name\n0912" + "1" * 200_000 + ",x\n", "no valid recipients, 1 row rejected"),
    ],
)
def test_a_bad_file_is_exit_2_naming_it_with_the_provider_unreachable(
    ghasedak_down, tmp_path, capsys, name, content, expected
):
    file = tmp_path / name
    file.write_text(content, encoding="utf-8")
    code, out, err = send(file, capsys)
    assert code == 2, err
    line = one_error_line(err)
    assert expected in line and name in line
    assert "ghasedak" not in line and "TransientError" not in err  # the provider was never asked
    assert out == "" and not database(tmp_path).exists()


@pytest.mark.parametrize(
    "content",
    [
        "x" * 200_000 + "\n",  # one line of 200,000 characters: past the csv module's field limit
        "x" * 200_000 + "\nabc\n",
        "name," + "y" * 2_000 + ",city\nali,x,y\n",  # a header cell of 2,000 characters
    ],
)
def test_a_header_line_of_huge_cells_is_named_in_a_short_line(ghasedak_down, tmp_path, capsys, content):
    """No phone column in a file whose first line is one cell of 200,000 characters: the line said "has no
    phone column among: " with nothing after it (the cell was past the csv module's limit), and for a
    cell of 2,000 characters it printed all of them."""
    file = tmp_path / "huge.csv"
    file.write_text(content, encoding="utf-8")
    code, out, err = send(file, capsys)
    assert code == 2, err
    line = one_error_line(err)
    assert re.fullmatch(
        r"error: huge\.csv has no phone column among: .+; name it with --column COLUMN", line
    ), line
    assert "among: ;" not in line and len(line) < 300, line
    assert re.search(r"[xy]{20,}… \(\d{1,3}(,\d{3})* characters\)", line), line
    assert out == "" and not database(tmp_path).exists()


def test_an_unreachable_provider_is_one_plain_line_exit_1(ghasedak_down, closed_url, tmp_path, capsys):
    code, out, err = send(write_rows(tmp_path / "list.csv", 3), capsys, "--yes")
    assert code == 1
    line = one_error_line(err)
    base = closed_url.rstrip("/")
    assert line == (
        f"error: ghasedak cannot be reached at {base} (connection refused); "
        "check SMSDISPATCH_GHASEDAK_URL and the network, or try again later"
    )
    assert "TransientError" not in err and "ConnectionError" not in err
    assert out == "" and not database(tmp_path).exists()


def test_a_dry_run_runs_offline(ghasedak_down, tmp_path, capsys):
    file = write_rows(tmp_path / "list.csv", 3)
    code, out, err = send(file, capsys, "--dry-run")
    assert code == 0, err
    assert "not checked: ghasedak unreachable" in " ".join(err.split())
    assert out.startswith("dry run, nothing stored: 3 recipients")
    code, out, err = send(file, capsys, "--dry-run", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["recipients"] == 3 and data["credit"] is None and data["state"] == "dry-run"
    assert not database(tmp_path).exists()


# ---- a route: the unusable provider is skipped, the next sends everything -----------------------------
def test_a_route_with_its_first_provider_unreachable_sends_through_the_second(
    ghasedak_down, tmp_path, capsys
):
    file = write_rows(tmp_path / "list.csv", 250)
    code, out, err = send(file, capsys, "--yes", "--json", provider="ghasedak,mediapayamak")
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["recipients"] == 250
    route = [w for w in data["warnings"] if w["code"] == "route"]
    assert len(route) == 1 and route[0]["message"].startswith(
        "ghasedak skipped, the campaign starts on mediapayamak: ghasedak cannot be reached at"
    )
    ledger = ghasedak_down.state
    sent = ledger.count_by_phone("mediapayamak")
    assert len(sent) == 250 and set(sent.values()) == {1}  # every number, each once
    assert ledger.accepted("ghasedak") == []
    code, out, err = run_cli(["status", str(data["campaign"]), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["provider"] == "mediapayamak"


def test_a_provider_refusing_the_key_is_skipped_like_an_unreachable_one(
    sandboxed, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("SMSDISPATCH_GHASEDAK_APIKEY", "wrong-key")
    file = write_rows(tmp_path / "list.csv", 20)
    code, out, err = send(file, capsys, "--yes", provider="ghasedak,mediapayamak")
    assert code == 0, err
    flat = " ".join(err.split())
    assert (
        "warning route: ghasedak skipped, the campaign starts on mediapayamak: ghasedak refused the account"
        in flat
    )
    assert "wrong-key" not in err
    sent = sandboxed.state.count_by_phone("mediapayamak")
    assert len(sent) == 20 and set(sent.values()) == {1}
    assert sandboxed.state.accepted("ghasedak") == []


def test_a_route_with_no_usable_provider_names_each(ghasedak_down, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SMSDISPATCH_MEDIAPAYAMAK_APIKEY", "wrong-key")
    code, out, err = send(
        write_rows(tmp_path / "list.csv", 3), capsys, "--yes", provider="ghasedak,mediapayamak"
    )
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("error: no provider of the route can send: ghasedak cannot be reached at")
    assert "mediapayamak refused the account" in line and "wrong-key" not in err
    assert not database(tmp_path).exists()


def test_strict_refuses_a_route_that_skipped_a_provider(ghasedak_down, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SMSDISPATCH_STRICT", "1")
    code, _, err = send(
        write_rows(tmp_path / "list.csv", 3),
        capsys,
        "--type",
        "transactional",
        provider="ghasedak,mediapayamak",
    )
    assert code == 3
    line = one_error_line(err)
    assert line.startswith("error: refused by preflight check route: ghasedak skipped")
    assert line.endswith("to send anyway: unset SMSDISPATCH_STRICT")
    assert not database(tmp_path).exists()


# ---- a refused send stores nothing, not even an empty database ----------------------------------------
def test_a_refused_budget_leaves_no_database(sandboxed, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SMSDISPATCH_AMOOT_PRICE", "1000")
    code, _, err = send(write_rows(tmp_path / "list.csv", 20), capsys, "--budget", "500", provider="amoot")
    assert code == 2
    assert "--budget 500 rial is less than one chunk" in one_error_line(err)
    assert not database(tmp_path).exists()


def test_a_refused_check_leaves_no_database(sandboxed, tmp_path, capsys):
    sandboxed.state.credit["amoot"] = 2
    code, _, err = send(write_rows(tmp_path / "list.csv", 20), capsys, provider="amoot")
    assert code == 3
    assert one_error_line(err).startswith("error: refused by preflight check credit")
    assert not database(tmp_path).exists()


def test_the_route_proof_orders_the_route_sums_the_credit_and_names_the_failure():
    from dispatcher.app.preflight.gather import CredentialsRejected, ProviderUnreachable
    from dispatcher.app.preflight.route import Proof, RouteProof
    from workers.status import Balance

    proof = RouteProof(
        (
            Proof("ghasedak", problem="ghasedak cannot be reached"),
            Proof("mediapayamak", Balance(100, "rial")),
            Proof("amoot", problem="amoot refused the account", refused=True),
            Proof("negin", Balance(50, "rial")),
        )
    )
    assert proof.route == ("mediapayamak", "negin", "ghasedak", "amoot")
    assert proof.credit() == Balance(150, "rial")
    assert [f.code.value for f in proof.findings(strict=False)] == ["route", "route"]
    assert proof.findings(strict=True)[0].refuses
    refused = RouteProof((Proof("amoot", problem="amoot refused the account", refused=True),))
    assert isinstance(refused.failure(), CredentialsRejected)
    down = RouteProof((proof.proofs[0], proof.proofs[2]))
    failure = down.failure()
    assert isinstance(failure, ProviderUnreachable)
    assert str(failure) == (
        "no provider of the route can send: ghasedak cannot be reached; amoot refused the account"
    )
    assert down.not_checked() == "not checked: ghasedak unreachable, amoot refused the account"


def test_a_provider_answering_503_is_one_plain_line_too(sandboxed, tmp_path, capsys):
    from dispatcher.sandbox.core import Fault, FaultKind

    sandboxed.state.add_fault(Fault("ghasedak", "balance", FaultKind.HTTP, status=503, times=10))
    code, out, err = send(write_rows(tmp_path / "list.csv", 3), capsys, "--yes")
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("error: ghasedak at http://127.0.0.1:") and "did not answer usably (" in line
    assert "HTTP 503" in line and line.endswith(
        "check SMSDISPATCH_GHASEDAK_URL and the network, or try again later"
    )
    assert "Error" not in line and out == "" and not database(tmp_path).exists()
