"""Replay real and generated histories through the engine and through DuckDB.

For each data set, two child processes run one after the other, so that each
peak RSS (``ru_maxrss`` of the child itself, read right after its run) belongs
to one implementation alone:

- engine: the CSV importer and the real ``Replayer`` (default batch size)
  into a fresh SQLite store, end to end;
- duckdb: ``benchmarks/duckdb_firings.py`` on the same CSV, one thread.

Each child writes its firings (customer id, rule, time in UTC, event id);
the engine's customer keys are mapped back to the CSV's CustomerID through
the identities table. The parent compares the two lists and prints a table.

    .venv/bin/python benchmarks/replay_bench.py             # everything
    .venv/bin/python benchmarks/replay_bench.py --skip-large
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import csv
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
MAPPING = ROOT / "examples" / "mappings" / "online-retail.yaml"
BENCH_MAPPING = HERE / "mapping.yaml"
SHARED = Path("/work/shared/data/online-retail")
SHOWN_DIFFERENCES = 10

sys.path.insert(0, str(HERE))

import duckdb_firings  # noqa: E402
import generate  # noqa: E402


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    csv: Path
    mapping: Path


@dataclass(frozen=True, slots=True)
class Run:
    """What one child process measured."""

    events: int
    seconds: float
    peak_mb: float
    firings: Path

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def main(argv: list[str] | None = None) -> None:
    """Run every data set through both implementations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20111209)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--child", choices=("engine", "duckdb"), help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mapping", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=Path, help="cProfile the engine run here")
    args = parser.parse_args(argv)

    if args.child is not None:
        run_child(args.child, args.csv, args.mapping, args.out, args.profile)
        return
    rows = [compare(dataset) for dataset in datasets(args)]
    print_table(rows)
    (DATA / "results.json").write_text(json.dumps(rows, indent=2) + "\n")


def datasets(args: argparse.Namespace) -> list[Dataset]:
    """The real sample, the whole-year slice and (unless skipped) a generated one."""
    DATA.mkdir(exist_ok=True)
    found = [
        Dataset("online-retail-sample", real_sample(), MAPPING),
        Dataset("online-retail-customer-slice", real_slice(), MAPPING),
    ]
    if not args.skip_large:
        path = generate.default_path(args.events, args.customers, args.seed)
        if not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            generate.write_history(path, args.events, args.customers, args.seed)
        found.append(Dataset(f"synthetic-{args.events:,}", path, BENCH_MAPPING))
    return found


def real_sample() -> Path:
    """The bundled sample, or the same 27 day files joined under .data."""
    bundled = ROOT / "examples" / "data" / "online-retail-sample.csv"
    if bundled.exists():
        return bundled
    joined = DATA / "online-retail-sample.csv"
    if not joined.exists():
        days = sorted((SHARED / "by-day").glob("*.csv"))
        with joined.open("w", encoding="utf-8") as out:
            for number, day in enumerate(days):
                lines = day.read_text(encoding="utf-8").splitlines(keepends=True)
                out.writelines(lines if number == 0 else lines[1:])
    return joined


def real_slice() -> Path:
    """The bundled whole-year customer slice, or the shared copy."""
    bundled = ROOT / "examples" / "data" / "online-retail-customer-slice.csv"
    if bundled.exists():
        return bundled
    return SHARED / "customer_slice" / "online_retail_customerid_mod10.csv"


# -- the parent ---------------------------------------------------------------


def compare(dataset: Dataset) -> dict[str, Any]:
    """Run both children on one data set and compare their firings."""
    print(f"{dataset.name}: engine ...", file=sys.stderr)
    engine = spawn("engine", dataset)
    print(f"{dataset.name}: duckdb ...", file=sys.stderr)
    duck = spawn("duckdb", dataset)
    engine_firings = read_firings(engine.firings)
    duck_firings = read_firings(duck.firings)

    identical = engine_firings == duck_firings
    if not identical:
        show_differences(dataset.name, engine_firings, duck_firings)
    return {
        "dataset": dataset.name,
        "events": engine.events,
        "duckdb_events": duck.events,
        "engine_seconds": round(engine.seconds, 2),
        "engine_events_per_s": round(engine.events_per_s),
        "engine_peak_mb": round(engine.peak_mb),
        "duckdb_seconds": round(duck.seconds, 2),
        "duckdb_events_per_s": round(duck.events_per_s),
        "duckdb_peak_mb": round(duck.peak_mb),
        "firings_engine": len(engine_firings),
        "firings_duckdb": len(duck_firings),
        "identical": identical,
        "by_rule": dict(
            sorted(collections.Counter(f[1] for f in duck_firings).items())
        ),
    }


def spawn(kind: str, dataset: Dataset) -> Run:
    """Run one implementation in a child process, under nice; read its report."""
    out = DATA / f"{dataset.name}.{kind}.firings.csv"
    command = [
        *("nice", "-n", "10", sys.executable, str(Path(__file__).resolve())),
        *("--child", kind, "--csv", str(dataset.csv)),
        *("--mapping", str(dataset.mapping), "--out", str(out)),
    ]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(report["events"], report["seconds"], report["peak_mb"], out)


def read_firings(path: Path) -> list[tuple[str, ...]]:
    """Firings from a child's file, sorted, for comparison."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = csv.reader(file)
        next(rows)
        return sorted(tuple(row) for row in rows)


def show_differences(
    name: str, engine: list[tuple[str, ...]], duck: list[tuple[str, ...]]
) -> None:
    """Print the first firings that only one side has, oldest first."""
    only_engine = collections.Counter(engine) - collections.Counter(duck)
    only_duck = collections.Counter(duck) - collections.Counter(engine)
    print(f"{name}: {only_engine.total()} firings only in the engine, "
          f"{only_duck.total()} only in DuckDB; first differences:")  # fmt: skip
    tagged = [(row, "engine") for row in only_engine.elements()]
    tagged += [(row, "duckdb") for row in only_duck.elements()]
    tagged.sort(key=lambda item: (item[0][2], item[0][0], item[0][1]))
    for (customer, rule, at, event_id), side in tagged[:SHOWN_DIFFERENCES]:
        print(f"  only {side:6}  {customer:>8}  {rule:20} {at}  {event_id}")


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the results as a Markdown table."""
    header = (
        "dataset",
        "events",
        "engine events/s",
        "engine peak MB",
        "duckdb events/s",
        "duckdb peak MB",
        "firings engine",
        "firings duckdb",
        "identical",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        cells = (
            row["dataset"],
            f"{row['events']:,}",
            f"{row['engine_events_per_s']:,}",
            f"{row['engine_peak_mb']:,}",
            f"{row['duckdb_events_per_s']:,}",
            f"{row['duckdb_peak_mb']:,}",
            f"{row['firings_engine']:,}",
            f"{row['firings_duckdb']:,}",
            "IDENTICAL" if row["identical"] else "DIFFERENT",
        )
        print("| " + " | ".join(cells) + " |")


# -- the children ---------------------------------------------------------------


def run_child(
    kind: str, csv_path: Path, mapping: Path, out: Path, profile: Path | None
) -> None:
    """Run one implementation; print one JSON line with what it measured."""
    if kind == "engine":
        events, seconds, peak_mb = run_engine(csv_path, mapping, out, profile)
    else:
        events, seconds, peak_mb = run_duckdb(csv_path, mapping, out)
    print(json.dumps({"events": events, "seconds": seconds, "peak_mb": peak_mb}))


def run_engine(
    csv_path: Path, mapping_path: Path, out: Path, profile: Path | None
) -> tuple[int, float, float]:
    """Replay the CSV into a fresh SQLite store; export the firings."""
    from tillsight.ingest.csv_source import read_csv
    from tillsight.ingest.mapping import load_mapping
    from tillsight.pipeline import Replayer
    from tillsight.programme_file import load_programme
    from tillsight.store.db import connect

    db_path = out.with_suffix(".db")
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    store = connect(f"sqlite:///{db_path}")
    replayer = Replayer(store, load_programme())
    mapping = load_mapping(mapping_path)

    profiler = cProfile.Profile() if profile is not None else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    summary = replayer.run(read_csv(csv_path, mapping))
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    peak_mb = _peak_mb()
    export_engine_firings(store, out)
    store.dispose()
    return summary.events_read, seconds, peak_mb


def export_engine_firings(store: Any, out: Path) -> None:
    """Write the store's firings with the CSV's CustomerID for each customer."""
    from sqlalchemy import select

    from tillsight.core.timeconv import instant_us
    from tillsight.store import schema
    from tillsight.store.queries import firings

    identities = schema.identities
    with store.connect() as conn:
        customer_of = dict(
            conn.execute(
                select(identities.c.customer_key, identities.c.value).where(
                    identities.c.kind == "customer"
                )
            ).all()
        )
        rows = [
            (customer_of.get(key, key), rule, instant_us(at), event_id)
            for key, rule, at, event_id in firings(conn)
        ]
    duckdb_firings.write_firings(out, rows)


def run_duckdb(
    csv_path: Path, mapping_path: Path, out: Path
) -> tuple[int, float, float]:
    """Compute the firings with DuckDB; write them."""
    from tillsight.ingest.mapping import load_mapping
    from tillsight.programme_file import load_programme

    settings = duckdb_firings.default_settings(load_programme())
    mapping = load_mapping(mapping_path)
    started = time.perf_counter()
    events, found = duckdb_firings.compute_firings(csv_path, mapping, settings)
    seconds = time.perf_counter() - started
    peak_mb = _peak_mb()
    duckdb_firings.write_firings(out, found)
    return events, seconds, peak_mb


def _peak_mb() -> float:
    """Peak RSS of this process so far, in MiB (Linux counts ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
