"""What the machine refuses reaches the user as one line, not a traceback.

These run the real entry point in a child process, as a shell would: the
error handling lives in ``main``, around the Typer app.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cli.test_cli import event_line
from tillsight.errors import StoreError

ENTRY = [sys.executable, "-c", "from tillsight.cli import main; main()"]


def tillsight(
    *args: str, cwd: Path, stdout: object = subprocess.PIPE
) -> tuple[int, str]:
    done = subprocess.run(
        [*ENTRY, *args],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, " ".join(done.stderr.split())


@pytest.fixture
def store(tmp_path: Path) -> Path:
    (tmp_path / "till.jsonl").write_text(event_line(), encoding="utf-8")
    code, said = tillsight("replay", "till.jsonl", "--db", "till.db", cwd=tmp_path)
    assert code == 0, said
    return tmp_path / "till.db"


def test_output_to_a_full_disk_is_one_line(store: Path) -> None:
    with open("/dev/full", "w") as full:
        code, said = tillsight(
            "firings", "--db", str(store), cwd=store.parent, stdout=full
        )

    assert code == 1
    assert said == "error: No space left on device"


@pytest.mark.parametrize(
    ("where", "reason"),
    [("missing/report.html", "No such file or directory"), (".", "Is a directory")],
)
def test_a_report_that_cannot_be_written_names_the_path(
    store: Path, where: str, reason: str
) -> None:
    code, said = tillsight(
        "kpi", "redemption", "--html", where, "--db", str(store), cwd=store.parent
    )

    assert code == 1
    assert said == f"error: {reason}: {where}"


def test_a_replay_into_a_read_only_store_is_refused_and_changes_nothing(
    store: Path,
) -> None:
    (store.parent / "more.jsonl").write_text(
        event_line(event_id="pos:2"), encoding="utf-8"
    )
    before = store.read_bytes()

    code, said = tillsight(
        "replay",
        "more.jsonl",
        "--db",
        f"sqlite:///file:{store}?mode=ro&uri=true",
        cwd=store.parent,
    )

    assert code == StoreError.exit_code
    assert said.endswith(
        "error: the store refused: attempt to write a readonly database"
    )
    assert store.read_bytes() == before


def test_an_empty_customer_reference_is_not_the_busiest_customer(store: Path) -> None:
    code, said = tillsight("customer", "", "--db", str(store), cwd=store.parent)

    assert code == 4
    assert said == "error: no customer with key, customer id or loyalty id ''"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_a_reading_command_refuses_a_store_in_memory(tmp_path: Path, url: str) -> None:
    code, said = tillsight("stages", "--db", url, cwd=tmp_path)

    assert code != 0
    assert "is a store in memory, empty each time it opens" in said


def test_a_huge_rejected_event_id_is_shown_by_its_start_and_length(
    tmp_path: Path,
) -> None:
    # Printed whole, 200,000 characters took the terminal minutes to lay out.
    (tmp_path / "long.jsonl").write_text(
        event_line(event_id="x" * 200_000), encoding="utf-8"
    )

    done = subprocess.run(
        [*ENTRY, "replay", "long.jsonl", "--db", "t.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    shown = " ".join(done.stdout.split())
    assert "(200,000 characters): event_id: is 200,000 characters long" in shown
    assert len(done.stdout) < 5_000


def test_a_store_its_user_cannot_write_is_explained(store: Path) -> None:
    # Run as an unprivileged user (dropped with setpriv when the suite runs as
    # root), from a folder of its own that it may read but not write.
    folder = Path(tempfile.mkdtemp(prefix="tillsight-ro-"))
    try:
        (folder / "till.db").write_bytes(store.read_bytes())
        (folder / "till.db").chmod(0o444)
        folder.chmod(0o555)
        as_user = (
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            if os.geteuid() == 0
            else []
        )
        done = subprocess.run(
            [*as_user, *ENTRY, "stages", "--db", "till.db"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)

    said = " ".join(done.stderr.split())
    assert done.returncode == StoreError.exit_code
    assert "Traceback" not in said
    assert said == (
        "error: cannot migrate sqlite:///till.db: attempt to write a readonly "
        "database (SQLite keeps a store's log beside its file, so even a command "
        "that only reads needs to write the file and its folder)"
    )
