"""Rejects files can be fixed and imported again; the summary counts it all."""

from __future__ import annotations

import csv
import json
from zoneinfo import ZoneInfo

from ingest_helpers import HEADER, make_mapping, split

from tillsight.core.events import EventType
from tillsight.ingest import ImportSummary, RejectsWriter, read_csv, read_jsonl

GOOD = "536365,85123A,HEART HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
BAD_DATE = '536366,22633,"WARMER, RED",6,2010-13-01 08:28:00,1.85,17850.0,UK'
SIBLING = "536366,22632,WARMER,6,2010-12-01 08:28:00,1.85,17850.0,UK"
GUEST_RETURN = "C536367,22632,WARMER,-1,2010-12-01 08:30:00,1.85,,UK"


def test_a_fixed_csv_rejects_file_imports_with_the_same_mapping(write_csv, tmp_path):
    mapping = make_mapping()
    rejects = tmp_path / "rejects.csv"
    with RejectsWriter(rejects) as writer:
        for error in split(read_csv(write_csv(GOOD, BAD_DATE, SIBLING), mapping))[1]:
            writer.write(error)

    with rejects.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["_line"], r["_field"]) for r in rows] == [
        ("3", "InvoiceDate"),
        ("4", "InvoiceNo"),
    ]
    assert rows[0]["Description"] == "WARMER, RED"
    fixed = rejects.read_text(encoding="utf-8").replace("2010-13-01", "2010-12-01")
    rejects.write_text(fixed, encoding="utf-8")

    events, errors = split(read_csv(rejects, mapping))

    assert errors == []
    assert [e.event_id for e in events] == ["online-retail:536366"]
    assert len(events[0].lines) == 2


def test_no_rejects_file_is_made_when_nothing_is_rejected(tmp_path):
    rejects = tmp_path / "rejects.csv"

    with RejectsWriter(rejects):
        pass

    assert not rejects.exists()


def test_a_fixed_jsonl_rejects_file_imports_again(tmp_path):
    zone = ZoneInfo("Europe/London")
    good = {
        "event_id": "api:1",
        "type": "purchase",
        "occurred_at": "2024-05-01T12:00:00",
        "currency": "GBP",
        "total": "5.00",
    }
    source = tmp_path / "events.jsonl"
    lines = [json.dumps(good), "{not json", json.dumps({**good, "total": "x"})]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"

    events, errors = split(read_jsonl(source, zone))
    with RejectsWriter(rejects) as writer:
        for error in errors:
            writer.write(error)
    written = rejects.read_text(encoding="utf-8").splitlines()
    rejects.write_text(written[1].replace('"x"', '"7.50"') + "\n", encoding="utf-8")
    again, still_bad = split(read_jsonl(rejects, zone))

    assert [e.event_id for e in events] == ["api:1"]
    assert [(e.line, e.errors[0][0]) for e in errors] == [(2, "(line)"), (3, "total")]
    assert json.loads(written[0])["_original"] == "{not json"
    assert still_bad == []
    assert again[0].total == 7.5


def test_the_summary_counts_transactions_rows_and_rejects(write_csv):
    summary = ImportSummary()
    path = write_csv(GOOD, BAD_DATE, SIBLING, GUEST_RETURN)

    for item in read_csv(path, make_mapping()):
        summary.add(item)

    assert summary == ImportSummary(
        rows_read=4,
        transactions=2,
        purchases=1,
        returns=1,
        guest_transactions=1,
        rejected_rows=2,
        rejected_transactions=1,
    )


def test_a_jsonl_line_number_points_at_the_bad_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('\n\n{"event_id": "a"}\n', encoding="utf-8")

    _, errors = split(read_jsonl(path, ZoneInfo("UTC")))

    assert errors[0].line == 3
    assert {field for field, _ in errors[0].errors} >= {"type", "occurred_at"}


def test_a_guest_return_in_jsonl_is_a_return_without_identity(tmp_path):
    path = tmp_path / "events.jsonl"
    body = {
        "event_id": "api:2",
        "type": "return",
        "occurred_at": "2024-05-01T12:00:00+02:00",
        "currency": "EUR",
        "total": 3,
    }
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")

    events, _ = split(read_jsonl(path, ZoneInfo("UTC")))

    assert events[0].type is EventType.RETURN
    assert events[0].is_guest
    assert events[0].source == "jsonl"


def test_a_row_with_extra_fields_keeps_its_reason_in_its_column(write_csv, tmp_path):
    rejects = tmp_path / "rejects.csv"
    extra = GOOD.replace("HEART HOLDER", "HEART, HOLDER")
    with RejectsWriter(rejects) as writer:
        for error in split(read_csv(write_csv(extra), make_mapping()))[1]:
            writer.write(error)

    with rejects.open(newline="", encoding="utf-8") as file:
        header, row = list(csv.reader(file))

    assert header[:4] == ["_line", "_field", "_reason", "InvoiceNo"]
    assert row[:2] == ["2", "(row)"]
    assert "has 9 fields but the header has 8" in row[2]
    assert row[3:] == extra.split(",")


def test_rejecting_a_rejects_file_again_replaces_its_reasons(write_csv, tmp_path):
    mapping = make_mapping()
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    with RejectsWriter(first) as writer:
        for error in split(read_csv(write_csv(BAD_DATE), mapping))[1]:
            writer.write(error)
    with RejectsWriter(second) as writer:
        for error in split(read_csv(first, mapping))[1]:
            writer.write(error)

    with second.open(newline="", encoding="utf-8") as file:
        header = next(csv.reader(file))
        file.seek(0)
        rows = list(csv.DictReader(file))

    assert header.count("_reason") == 1
    assert [(row["_line"], row["_field"]) for row in rows] == [("2", "InvoiceDate")]
    assert rows[0]["Description"] == "WARMER, RED"


def reject_all(source, rejects):
    with RejectsWriter(rejects) as writer:
        for error in split(read_jsonl(source, ZoneInfo("Europe/London")))[1]:
            writer.write(error)
    return rejects.read_bytes()


def test_rejecting_a_jsonl_rejects_file_again_keeps_one_note_and_the_bytes(tmp_path):
    source = tmp_path / "events.jsonl"
    source.write_bytes(
        b'{"event_id": "api:1", "type": "purchase", "note": "Caf\xe9"}\n'
        b"{not json\n"
        b'{"event_id": "api:2", "type": "purchase"}\n'
    )

    first = reject_all(source, tmp_path / "first.jsonl")
    second = reject_all(tmp_path / "first.jsonl", tmp_path / "second.jsonl")

    assert first == second
    lines = second.splitlines()
    assert lines[0].count(b'"_rejected"') == 1
    assert lines[0].endswith(b'"note": "Caf\xe9"}')
    assert json.loads(lines[1])["_original"] == "{not json"
    assert json.loads(lines[1]).keys() == {"_rejected", "_original"}
    assert json.loads(lines[2])["event_id"] == "api:2"
    assert json.loads(lines[2])["_rejected"]["errors"][0]["field"] == "occurred_at"


def test_a_latin1_file_s_rejects_are_latin1_and_import_once_fixed(write_csv, tmp_path):
    mapping = make_mapping(encoding="latin-1")
    source = tmp_path / "till.csv"
    source.write_bytes(write_csv(BAD_DATE.replace("WARMER", "CAF\xc9")).read_bytes())
    latin = source.read_text(encoding="utf-8").encode("latin-1")
    source.write_bytes(latin)
    rejects = tmp_path / "rejects.csv"
    with RejectsWriter(rejects, encoding=mapping.encoding) as writer:
        for error in split(read_csv(source, mapping))[1]:
            writer.write(error)

    assert b'"CAF\xc9, RED"' in rejects.read_bytes()
    rejects.write_bytes(rejects.read_bytes().replace(b"2010-13-01", b"2010-12-01"))
    events, errors = split(read_csv(rejects, mapping))

    assert errors == []
    assert events[0].lines[0].description == "CAF\xc9, RED"


def test_a_json_line_naming_a_key_twice_is_rejected_not_read_as_the_last(tmp_path):
    source = tmp_path / "events.jsonl"
    source.write_text(
        '{"event_id": "api:1", "total": "5.00", "total": "500.00"}\n'
        '{"event_id": "api:2", "note": "a\tb"}\n',
        encoding="utf-8",
    )

    events, errors = split(read_jsonl(source, ZoneInfo("Europe/London")))

    assert events == []
    assert [error.errors for error in errors] == [
        [("(line)", "is not valid JSON: key 'total' appears twice in one object")],
        [("(line)", "is not valid JSON: Invalid control character at column 33")],
    ]


def reject_csv(source, rejects, mapping):
    with RejectsWriter(rejects, mapping.encoding, mapping.delimiter) as writer:
        for error in split(read_csv(source, mapping))[1]:
            writer.write(error)
    return rejects.read_bytes()


def test_a_short_row_stays_short_and_is_refused_again_unfixed(write_csv, tmp_path):
    mapping = make_mapping()
    cut = GOOD.rsplit(",", 2)[0]  # the file ended mid-row

    first = reject_csv(write_csv(cut), tmp_path / "first.csv", mapping)
    second = reject_csv(tmp_path / "first.csv", tmp_path / "second.csv", mapping)

    assert first.splitlines()[1].endswith(cut.encode())
    assert first == second


def test_a_row_broken_by_a_quote_is_kept_as_written_until_fixed(write_csv, tmp_path):
    mapping = make_mapping()
    broken = GOOD.replace("HEART HOLDER", '"HEART HOLDER')

    first = reject_csv(write_csv(broken), tmp_path / "first.csv", mapping)
    second = reject_csv(tmp_path / "first.csv", tmp_path / "second.csv", mapping)
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(second.replace(b'"HEART', b"HEART"))
    events, errors = split(read_csv(fixed, mapping))

    assert first.splitlines()[1].endswith(b"," + broken.encode())
    assert first == second
    assert errors == [] and [e.event_id for e in events] == ["online-retail:536365"]


def test_a_semicolon_file_s_rejects_use_semicolons(tmp_path):
    mapping = make_mapping(delimiter=";")
    source = tmp_path / "till.csv"
    bad = BAD_DATE.replace('"WARMER, RED"', "WARMER RED")
    source.write_text(f"{HEADER}\n{bad}\n".replace(",", ";"), encoding="utf-8")

    written = reject_csv(source, tmp_path / "rejects.csv", mapping)
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(written.replace(b"2010-13-01", b"2010-12-01"))
    events, errors = split(read_csv(fixed, mapping))

    assert written.startswith(b"_line;_field;_reason;InvoiceNo;")
    assert errors == [] and events[0].lines[0].description == "WARMER RED"


def test_a_rejects_file_of_a_giant_field_rejected_again_keeps_one_note(
    write_csv, tmp_path
):
    mapping = make_mapping()
    giant = GOOD.replace("HEART HOLDER", "W" * 140_000)
    source = write_csv(giant, SIBLING)
    rounds = []
    for number in range(3):
        rejects = tmp_path / f"rejects-{number}.csv"
        with RejectsWriter(rejects) as writer:
            for error in split(read_csv(source, mapping))[1]:
                writer.write(error)
        rounds.append(rejects.read_text(encoding="utf-8"))
        source = rejects

    header, line = rounds[0].splitlines()
    assert rounds[1] == rounds[2] == rounds[0]
    assert header == "_line,_field,_reason," + HEADER
    assert line.endswith("," + giant)
