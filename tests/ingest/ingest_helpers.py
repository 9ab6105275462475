"""Shared helpers for the import tests: the example mapping and result splitting."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tillsight.core.events import Event
from tillsight.errors import RowError
from tillsight.ingest import Mapping, parse_mapping

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_MAPPING = REPO / "examples" / "mappings" / "online-retail.yaml"
HEADER = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
)


def make_mapping(**changes: Any) -> Mapping:
    """Load the Online Retail example mapping with top-level keys replaced."""
    data = yaml.safe_load(EXAMPLE_MAPPING.read_text(encoding="utf-8"))
    data.update(changes)
    return parse_mapping(yaml.safe_dump(data))


def split(items: Iterable[Event | RowError]) -> tuple[list[Event], list[RowError]]:
    """Separate events from rejected rows, keeping order."""
    events: list[Event] = []
    errors: list[RowError] = []
    for item in items:
        if isinstance(item, Event):
            events.append(item)
        else:
            errors.append(item)
    return events, errors
