"""Fixtures for the import tests: CSV files written on the fly, and a reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ingest_helpers import HEADER, make_mapping, split

from tillsight.core.events import Event
from tillsight.errors import RowError
from tillsight.ingest import Mapping, read_csv


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write data rows under a header to a fresh file and return its path."""

    def write(*rows: str, header: str = HEADER, name: str = "till.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def read() -> Callable[..., tuple[list[Event], list[RowError]]]:
    """Read a CSV with a mapping (the example one by default) into two lists."""

    def run(
        path: Path, mapping: Mapping | None = None
    ) -> tuple[list[Event], list[RowError]]:
        return split(read_csv(path, mapping or make_mapping()))

    return run
