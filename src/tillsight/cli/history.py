"""``replay`` and ``demo``: history files through the engine into the store.

A replay keeps what it could not take in two files next to the working
directory, named after the input and the UTC time of the run, so that no run
overwrites another's: ``FILE.rejects-<time>.csv`` (or ``.jsonl``) for rows
the reader rejected, ``FILE.rejected-events-<time>.jsonl`` for events the
engine refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tillsight.cli.options import Database, ProgrammeFile
from tillsight.cli.terminal import make_console, shown
from tillsight.core.events import Event
from tillsight.core.programme import Programme
from tillsight.errors import ConfigError, InputError, RowError, brief_field
from tillsight.pipeline import Replayer, ReplaySummary
from tillsight.programme_file import load_programme
from tillsight.store.db import connect

console = make_console()

EXAMPLE_DATA = Path("examples/data/online-retail-sample.csv")
EXAMPLE_MAPPING = Path("examples/mappings/online-retail.yaml")


def register(app: typer.Typer) -> None:
    app.command()(replay)
    app.command()(demo)


def replay(
    file: Annotated[Path, typer.Argument(help="CSV (with --mapping) or JSON Lines.")],
    mapping: Annotated[
        Path | None, typer.Option(help="Mapping file for a CSV of till lines.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Run timers up to this date (end of day, programme zone) "
            "or ISO time; default: the last event's time.",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Where bad rows go (default: FILE.rejects-TIME.csv, or .jsonl "
            "for a JSON Lines file, in the working directory).",
            show_default=False,
        ),
    ] = None,
    db: Database = None,
    programme_file: ProgrammeFile = None,
) -> None:
    """Replay a history file: events, stages, segments, tiers and firings."""
    programme = load_programme(programme_file)
    summary, kept = run_replay(
        file, mapping, programme, db, _until(until, programme), rejects
    )
    print_summary(summary, kept)


def demo(db: Database = None) -> None:
    """Replay the bundled real sample (UCI Online Retail) and show the result."""
    from tillsight.cli.kpi import show_loyalty
    from tillsight.cli.lookup import show_customer, show_stages

    if not EXAMPLE_DATA.exists():
        raise ConfigError(
            f"{EXAMPLE_DATA} not found: run the demo from the root of the repository"
        )
    programme = load_programme()
    summary, kept = run_replay(EXAMPLE_DATA, EXAMPLE_MAPPING, programme, db, None, None)
    print_summary(summary, kept)
    show_stages(db)
    show_customer(db, None)
    show_loyalty(db, programme)


@dataclass(frozen=True, slots=True)
class KeptFiles:
    """The input of a replay and the files it wrote what it could not take to."""

    source: Path
    rejected_rows: Path | None = None
    refused_events: Path | None = None


def run_replay(
    file: Path,
    mapping: Path | None,
    programme: Programme,
    db: str | None,
    until: datetime | None,
    rejects: Path | None,
) -> tuple[ReplaySummary, KeptFiles]:
    """Replay one file with a progress bar; return the summary and kept files."""
    from tillsight.ingest.rejects import RejectsWriter

    if not file.exists():
        raise ConfigError(f"{file}: no such file")
    is_jsonl = file.suffix.lower() in {".jsonl", ".ndjson"}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = ".jsonl" if is_jsonl else ".csv"
    rejects_path = rejects or _unused(Path(f"{file.name}.rejects-{stamp}{suffix}"))
    rows, encoding, delimiter = _read(file, mapping, programme, is_jsonl)
    store = connect(db)
    writer = RejectsWriter(rejects_path, encoding, delimiter)
    with writer, _progress() as progress:
        task = progress.add_task(f"replaying {shown(file.name)}", total=None)
        replayer = Replayer(
            store,
            programme,
            on_progress=lambda n: progress.advance(task, n),
            on_reject=writer.write,
            on_wait=lambda: progress.console.print(
                "another replay into this store is running; waiting for it to finish"
            ),
        )
        summary = replayer.run(rows, until=until)
        written = writer.written
    store.dispose()
    events_path = _keep_rejected_events(summary, file, stamp)
    return summary, KeptFiles(file, rejects_path if written else None, events_path)


def _unused(path: Path) -> Path:
    """Give ``path``, or a numbered variant of it if a file is already there."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def _keep_rejected_events(
    summary: ReplaySummary, file: Path, stamp: str
) -> Path | None:
    """Write events the engine refused as canonical JSON Lines, to fix and resend."""
    from tillsight.ingest.canonical import event_to_json
    from tillsight.ingest.rejects import RejectedRow, RejectsWriter

    if not summary.rejected_events:
        return None
    path = _unused(Path(f"{file.name}.rejected-events-{stamp}.jsonl"))
    with RejectsWriter(path) as writer:
        for rejected in summary.rejected_events:
            assert rejected.event is not None
            raw = _json_line(event_to_json(rejected.event))
            writer.write(RejectedRow(0, [(rejected.field, rejected.reason)], raw=raw))
    return path


def _json_line(data: dict[str, object]) -> str:
    """One JSON line; text that is not UTF-8 (a lone surrogate, which is why
    such an event is refused) is written as the escape it was read from."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        return json.dumps(data)


def _read(
    file: Path, mapping: Path | None, programme: Programme, is_jsonl: bool
) -> tuple[Iterator[Event | RowError], str, str]:
    """The file's events and rejects, and the encoding and delimiter its
    rejects are kept in.

    Raises ``ConfigError`` before anything is read if the options do not fit.
    """
    if is_jsonl:
        from tillsight.ingest.jsonl_source import read_jsonl

        if mapping is not None:
            raise ConfigError(
                f"{file}: a JSON Lines file holds canonical events and takes no "
                "--mapping (a mapping is for a CSV of till lines)"
            )

        return read_jsonl(file, programme.zone), "utf-8", ","
    if mapping is None:
        raise ConfigError(
            f"{file}: a CSV needs --mapping to say what its columns are "
            "(JSON Lines files are named .jsonl or .ndjson)"
        )
    from tillsight.ingest.csv_source import read_csv
    from tillsight.ingest.mapping import load_mapping

    loaded = load_mapping(mapping)
    fixed = loaded.currency.constant
    if fixed is not None and fixed != programme.currency:
        raise ConfigError(
            f"{mapping}: currency {fixed} is not the programme's currency "
            f"({programme.currency}): every event would be refused"
        )
    return read_csv(file, loaded), loaded.encoding, loaded.delimiter


def _until(text: str | None, programme: Programme) -> datetime | None:
    """Read ``--until``: a day means its end, a time without a zone is local.

    Anything after the end of tomorrow, in the programme's zone, is refused:
    timers would fire lapses that have not happened.
    """
    if text is None:
        return None
    zone: ZoneInfo = programme.zone
    try:
        try:
            day: date | None = date.fromisoformat(text)  # 2026-12-05 or 20261205
        except ValueError:
            day = None
        if day is not None:
            moment = datetime.combine(day, time.max, tzinfo=zone)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        moment.astimezone(UTC)
    except ValueError as exc:
        raise ConfigError(
            f"--until {text!r} is not a date (YYYY-MM-DD) or an ISO time"
        ) from exc
    except OverflowError as exc:
        raise ConfigError(f"--until {text!r} is out of range") from exc
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    if moment > datetime.combine(tomorrow, time.max, tzinfo=zone):
        raise ConfigError(
            f"--until {text!r} is after tomorrow: timers would fire lapses that "
            "have not happened; give a date up to tomorrow"
        )
    return moment


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def print_summary(summary: ReplaySummary, kept: KeptFiles) -> None:
    """Print the tally of a replay, and where what it could not take went.

    Raises ``InputError`` if the file held no rows at all.
    """
    if not summary.events_read and not summary.rejected_rows:
        raise InputError(
            [(f"no events in {kept.source}", "it is empty or holds only a header")]
        )
    table = Table(title="Replay", show_header=False)
    table.add_row("events read", f"{summary.events_read:,}")
    table.add_row("new events stored", f"{summary.stored:,}")
    table.add_row("duplicates skipped", f"{summary.duplicates:,}")
    table.add_row("guest transactions", f"{summary.guests:,}")
    table.add_row("rejected rows", f"{summary.rejected_rows:,}")
    table.add_row("rejected events", f"{len(summary.rejected_events):,}")
    table.add_row("rule firings", f"{summary.firings:,}")
    table.add_row("customers rebuilt (late events)", f"{summary.rebuilt_customers:,}")
    if summary.clock is not None:
        table.add_row("timers run up to", summary.clock.isoformat())
    if summary.until_behind_clock is not None and summary.clock is not None:
        table.add_row(
            "note",
            f"--until {summary.until_behind_clock.isoformat()} is before the "
            "events replayed (or timers run before), so it ran no timers: "
            "timers never run backwards",
        )
    for label, path in (
        ("rejected rows kept in", kept.rejected_rows),
        ("rejected events kept in", kept.refused_events),
    ):
        if path is not None:
            table.add_row(label, str(path))
    console.print(table)

    for rejected in summary.rejected_events[:20]:
        console.print(
            f"[yellow]rejected[/] {escape(brief_field(rejected.event_id))}: "
            f"{escape(rejected.field)}: {escape(rejected.reason)}",
            markup=True,
        )
    if kept.rejected_rows is not None:
        how = "" if kept.rejected_rows.suffix == ".jsonl" else " with the same mapping"
        console.print(
            f"[yellow]{_count(summary.rejected_rows, 'bad row')} kept in "
            f"{escape(str(kept.rejected_rows))}[/] (fix them and replay that "
            f"file{how})",
            markup=True,
        )
    if kept.refused_events is not None:
        console.print(
            f"[yellow]{_count(len(summary.rejected_events), 'event')} refused, kept "
            f"in {escape(str(kept.refused_events))}[/] (fix them and replay that file)",
            markup=True,
        )


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}" + ("" if number == 1 else "s")
