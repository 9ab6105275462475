"""File import: till exports and JSON Lines in, canonical events out.

Each reader streams a file and yields, in file order, an
:class:`~tillsight.core.events.Event` per good transaction and a
:class:`~tillsight.errors.RowError` per rejected row; it never stores anything.
"""

from tillsight.ingest.canonical import (
    CanonicalEvent,
    event_to_json,
    parse_canonical,
    to_event,
)
from tillsight.ingest.csv_source import read_csv
from tillsight.ingest.jsonl_source import read_jsonl
from tillsight.ingest.mapping import Mapping, load_mapping, parse_mapping
from tillsight.ingest.rejects import ImportSummary, RejectedRow, RejectsWriter

__all__ = [
    "CanonicalEvent",
    "ImportSummary",
    "Mapping",
    "RejectedRow",
    "RejectsWriter",
    "event_to_json",
    "load_mapping",
    "parse_canonical",
    "parse_mapping",
    "read_csv",
    "read_jsonl",
    "to_event",
]
