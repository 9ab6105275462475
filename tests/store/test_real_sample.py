"""The bundled real data (UCI Online Retail, CC BY 4.0) through the whole path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tillsight.ingest.csv_source import read_csv
from tillsight.ingest.mapping import load_mapping
from tillsight.pipeline import Replayer
from tillsight.programme_file import load_programme
from tillsight.store import queries
from tillsight.store.db import connect

ROOT = Path(__file__).parents[2]
SLICE = ROOT / "examples/data/online-retail-customer-slice.csv"
MAPPING = ROOT / "examples/mappings/online-retail.yaml"


@pytest.fixture
def slice_store(sqlite_url: str) -> Engine:
    store = connect(sqlite_url)
    Replayer(store, load_programme()).run(read_csv(SLICE, load_mapping(MAPPING)))
    yield store
    store.dispose()


def customers_by_rule(store: Engine) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with store.connect() as conn:
        for key, rule, _at, _event in queries.firings(conn):
            found.setdefault(rule, set()).add(key)
    return found


def test_whole_year_slice_fires_lapse_timers_and_wins_customers_back(
    slice_store: Engine,
) -> None:
    by_rule = customers_by_rule(slice_store)

    # PROVENANCE.md, computed by the data's curators on the same slice: 48
    # customers have a gap of 180 days or more between two purchases.
    assert len(by_rule["won_back"]) == 48
    assert len(by_rule["lapsed"]) >= 48
    assert by_rule["won_back"] <= by_rule["lapsed"]


def test_whole_year_slice_stages_add_up(slice_store: Engine) -> None:
    with slice_store.connect() as conn:
        counts = queries.stage_counts(conn)
        firings = Counter(rule for _k, rule, _a, _e in queries.firings(conn))

    assert sum(counts["stage"].values()) == 445
    assert firings["first_purchase"] == 445 - counts["stage"]["(no stage yet)"]
    assert counts["stage"]["lapsed"] == firings["lapsed"] - firings["won_back"]
    assert counts["stage"]["returning"] <= firings["won_back"]
