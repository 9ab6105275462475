"""Hostile files: absurd numbers, foreign encodings, giant fields, odd headers."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ingest_helpers import HEADER, make_mapping, split

from tillsight.core.events import Event, EventType, Redemption
from tillsight.errors import InputError, RowError
from tillsight.ingest import read_csv, read_jsonl
from tillsight.ingest.canonical import AMOUNT, QUANTITY

Read = Callable[..., tuple[list[Event], list[RowError]]]
GOOD = "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
LONDON = ZoneInfo("Europe/London")


def row(invoice: str = "536366", quantity: str = "6", price: str = "2.55") -> str:
    return (
        f"{invoice},22633,HAND WARMER,{quantity},2010-12-01 08:28:00,{price},17850.0,UK"
    )


@pytest.mark.parametrize(
    ("quantity", "price", "column", "shown"),
    [
        ("1e18", "2.55", "Quantity", "'1e18' is beyond any till"),
        ("1e30", "2.55", "Quantity", "'1e30' is beyond any till"),
        ("1e17", "2.55", "Quantity", "'1e17' is beyond any till"),
        ("-1000000", "2.55", "Quantity", "'-1000000' is beyond any till"),
        ("6", "1e-30", "UnitPrice", "'1e-30' has more than 6 decimal places"),
        ("6", "2.5500001", "UnitPrice", "'2.5500001' has more than 6 decimal"),
        ("6", "1e9", "UnitPrice", "'1e9' is beyond any till"),
        ("6", "Infinity", "UnitPrice", "'Infinity' is not a finite number"),
        ("900000", "9000", "Quantity", "line total '8100000000' is beyond any till"),
        ("1_000", "2.55", "Quantity", "'1_000' is not written as a number"),
        ("\u0666", "2.55", "Quantity", "'\u0666' is not written as a number"),
        ("6", "2.5 5", "UnitPrice", "'2.5 5' is not a number"),
    ],
)
def test_a_csv_number_no_till_writes_is_a_row_error_naming_field_and_value(
    write_csv: Callable[..., Path],
    read: Read,
    quantity: str,
    price: str,
    column: str,
    shown: str,
) -> None:
    path = write_csv(GOOD, row(quantity=quantity, price=price))

    events, errors = read(path)

    assert [event.event_id for event in events] == ["online-retail:536365"]
    assert [(error.line, error.errors[0][0]) for error in errors] == [(3, column)]
    assert shown in errors[0].errors[0][1]


def test_numbers_at_the_edge_of_the_bounds_are_kept(
    write_csv: Callable[..., Path], read: Read
) -> None:
    path = write_csv(row(quantity="999999", price="999.999999"), row("536367"))

    events, errors = read(path)

    assert errors == [] and len(events) == 2
    assert events[0].lines[0].unit_price == Decimal("999.999999")


@pytest.mark.parametrize(
    ("quantity", "price", "kept"),
    [
        (" 6 ", "2.55", ("6", "2.55")),
        ("1e1", "2.5E0", ("10", "2.5")),
        ("+6", ".5", ("6", "0.5")),
    ],
)
def test_a_number_a_spreadsheet_reformatted_is_kept_in_plain_digits(
    write_csv: Callable[..., Path],
    read: Read,
    quantity: str,
    price: str,
    kept: tuple[str, str],
) -> None:
    path = write_csv(row(quantity=quantity, price=price))

    events, errors = read(path)

    assert errors == []
    line = events[0].lines[0]
    assert (str(line.quantity), str(line.unit_price)) == kept


def test_a_transaction_totalling_beyond_any_till_is_rejected(
    write_csv: Callable[..., Path], read: Read
) -> None:
    path = write_csv(*[row(quantity="999999", price="999") for _ in range(2)])

    events, errors = read(path)

    assert events == [] and len(errors) == 2
    assert "totals '1997998002' is beyond any till" in errors[0].errors[0][1]


def jsonl_line(quantity: str, price: str = '"2.50"') -> str:
    return (
        '{"event_id": "pos:1", "type": "purchase", "currency": "GBP", '
        '"occurred_at": "2025-03-01T10:00:00+00:00", "customer": {"customer_id": '
        f'"C1"}}, "lines": [{{"sku": "A", "quantity": {quantity}, '
        f'"unit_price": {price}}}]}}'
    )


@pytest.mark.parametrize(
    ("quantity", "price", "field", "shown"),
    [
        ("1e18", '"2.50"', "lines[0].quantity", "'1" + "0" * 18 + "' is beyond any"),
        ('"1e30"', '"2.50"', "lines[0].quantity", "'1" + "0" * 30 + "' is beyond any"),
        ("1e17", '"2.50"', "lines[0].quantity", "'1" + "0" * 17 + "' is beyond any"),
        ('"1_000"', '"2.50"', "lines[0].quantity", "is not written as a number"),
        ('"\u0661"', '"2.50"', "lines[0].quantity", "is not written as a number"),
        ("1", "1e-30", "lines[0].unit_price", "'1E-30' has more than 6 decimal"),
        ("1" + "0" * 5000, '"2.50"', "lines[0].quantity", "is beyond any till"),
        ("999999", "999999", "lines[0].total", "is beyond any till"),
    ],
)
def test_a_json_number_no_till_writes_is_a_row_error_naming_field_and_value(
    tmp_path: Path, quantity: str, price: str, field: str, shown: str
) -> None:
    path = tmp_path / "till.jsonl"
    path.write_text(jsonl_line(quantity, price) + "\n", encoding="utf-8")

    events, errors = split(read_jsonl(path, LONDON))

    assert events == []
    assert field in [name for name, _ in errors[0].errors]
    assert any(shown in reason for _, reason in errors[0].errors)


@pytest.mark.parametrize(
    ("change", "field", "length"),
    [
        ({"total": "1e400"}, "total", 401),
        (
            {"lines": [{"sku": "A", "quantity": 1e300, "unit_price": "1"}]},
            "lines[0].quantity",
            301,
        ),
        ({"x" * 5000: 1}, "x" * 80, 5000),
    ],
)
def test_a_huge_value_or_key_is_named_by_its_start_and_length(
    tmp_path: Path, change: dict[str, object], field: str, length: int
) -> None:
    body = json.loads(jsonl_line("1")) | change
    path = tmp_path / "till.jsonl"
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")

    _, errors = split(read_jsonl(path, LONDON))

    (named, reason), *others = errors[0].errors
    assert named.startswith(field)
    assert f"({length:,} characters)" in named + reason
    assert all(len(n) < 200 and len(r) < 300 for n, r in errors[0].errors)
    assert len(str(errors[0])) < 300 * (1 + len(others))


def test_redeemed_points_beyond_any_till_are_a_row_error(tmp_path: Path) -> None:
    body = json.loads(jsonl_line("1"))
    body["redemptions"] = [{"points": 10**30}]
    path = tmp_path / "till.jsonl"
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")

    events, errors = split(read_jsonl(path, LONDON))

    assert events == [] and errors[0].errors[0][0] == "redemptions[0].points"


@pytest.mark.parametrize(
    ("redemption", "field"),
    [
        ({"code": "ABCD-EFGH", "amount": "-99999.00"}, "redemptions[0].amount"),
        ({"amount": "50.00"}, "redemptions[0]"),
    ],
)
def test_a_tender_that_adds_money_or_names_nothing_is_a_row_error(
    tmp_path: Path, redemption: dict[str, str], field: str
) -> None:
    body = json.loads(jsonl_line("1"))
    body["redemptions"] = [redemption]
    path = tmp_path / "till.jsonl"
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")

    events, errors = split(read_jsonl(path, LONDON))

    assert events == [] and field in [name for name, _ in errors[0].errors]


def test_rewards_and_points_paying_more_than_the_sale_are_a_row_error(
    tmp_path: Path,
) -> None:
    body = json.loads(jsonl_line("1"))
    total = sum(Decimal(line["unit_price"]) * Decimal(str(line["quantity"]))
                for line in body["lines"])  # fmt: skip
    body["redemptions"] = [{"points": 500, "amount": str(total + Decimal("0.01"))}]
    path = tmp_path / "till.jsonl"
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")

    events, errors = split(read_jsonl(path, LONDON))

    assert events == []
    assert errors[0].errors[0][0] == "redemptions"
    assert "cannot pay more than the sale" in errors[0].errors[0][1]


def good_jsonl(event_id: str) -> str:
    body = json.loads(jsonl_line("1"))
    return json.dumps({**body, "event_id": event_id})


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            good_jsonl("e2").replace("A", "Caf\xe9").encode("latin-1"),
            "not UTF-8 text (byte 0xe9)",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nests arrays or objects deeper"),
        (b'{"event_id": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", "nests arrays"),
    ],
    ids=["latin-1 byte", "deep array", "deep value"],
)
def test_a_jsonl_line_that_cannot_be_read_is_one_reject_and_the_rest_imports(
    tmp_path: Path, bad: bytes, reason: str
) -> None:
    path = tmp_path / "till.jsonl"
    lines = [good_jsonl("e1").encode(), bad, good_jsonl("e3").encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")

    events, errors = split(read_jsonl(path, LONDON))

    assert [event.event_id for event in events] == ["e1", "e3"]
    assert [error.line for error in errors] == [2]
    assert reason in errors[0].errors[0][1]


def test_a_jsonl_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "till.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + good_jsonl("e1").encode() + b"\n")

    events, errors = split(read_jsonl(path, LONDON))

    assert ([event.event_id for event in events], errors) == (["e1"], [])


def test_paid_never_exceeds_the_total_whatever_a_source_built() -> None:
    event = Event(
        event_id="E1",
        type=EventType.PURCHASE,
        occurred_at=datetime(2025, 6, 1, 12, tzinfo=UTC),
        total=Decimal("1.00"),
        currency="GBP",
        redemptions=(Redemption("ABCD-EFGH", 0, Decimal("-99999.00")),),
    )

    assert event.paid == Decimal("1.00")


numbers = st.decimals(allow_nan=False, allow_infinity=False) | st.decimals(
    min_value=-(10**10), max_value=10**10, places=8
)


@given(numbers)
def test_the_fast_bound_check_agrees_with_the_explained_one(value: Decimal) -> None:
    for bound in (QUANTITY, AMOUNT):
        try:
            bound.fits(value, bound.step)
            fits = True
        except ArithmeticError:
            fits = False

        assert fits == (bound.problem(value) is None)


def test_a_line_that_is_not_utf8_is_one_reject_and_the_rest_imports(
    tmp_path: Path, read: Read
) -> None:
    path = tmp_path / "till.csv"
    text = "\n".join([HEADER, GOOD, row().replace("HAND", "Caf\xe9")]) + "\n"
    path.write_bytes(text.encode("latin-1") + (row("536367") + "\n").encode())

    events, errors = read(path)

    assert [event.event_id[-6:] for event in events] == ["536365", "536367"]
    assert [error.line for error in errors] == [3]
    assert errors[0].errors == [
        (
            "(line)",
            "not UTF-8 text (byte 0xe9); save the file as UTF-8 or set "
            "`encoding:` in the mapping",
        )
    ]
    description = list(errors[0].raw)[2]  # type: ignore[attr-defined]
    assert description.encode("utf-8", "surrogateescape") == b"Caf\xe9 WARMER"


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "ISO-8859-1"])
def test_a_latin1_file_imports_when_the_mapping_says_so(
    tmp_path: Path, read: Read, encoding: str
) -> None:
    path = tmp_path / "till.csv"
    text = "\n".join([HEADER, row().replace("HAND", "Caf\xe9")]) + "\n"
    path.write_bytes(text.encode("latin-1"))

    events, errors = read(path, make_mapping(encoding=encoding))

    assert errors == []
    assert events[0].lines[0].description == "Caf\xe9 WARMER"


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "utf_8", "utf-8-sig"])
def test_excels_utf8_byte_order_mark_is_dropped(
    tmp_path: Path, read: Read, encoding: str
) -> None:
    path = tmp_path / "till.csv"
    path.write_bytes(("\ufeff" + HEADER + "\n" + GOOD + "\n").encode())

    events, errors = read(path, make_mapping(encoding=encoding))

    assert errors == [] and len(events) == 1


def test_a_utf16_file_read_as_utf8_stops_naming_file_line_and_hint(
    tmp_path: Path, read: Read
) -> None:
    path = tmp_path / "till.csv"
    path.write_text(HEADER + "\n" + GOOD + "\n", encoding="utf-16")

    with pytest.raises(InputError) as caught:
        read(path)

    assert str(caught.value) == (
        f"{path}: line 1: not UTF-8 text (byte 0xff); save the file as UTF-8 or "
        "set `encoding:` in the mapping (it looks like UTF-16: say `encoding: "
        "utf-16`)"
    )


def test_a_utf16_file_imports_when_the_mapping_says_so(
    tmp_path: Path, read: Read
) -> None:
    path = tmp_path / "till.csv"
    path.write_text(HEADER + "\n" + GOOD + "\n", encoding="utf-16")

    events, errors = read(path, make_mapping(encoding="utf-16"))

    assert errors == [] and len(events) == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "cp500"])
def test_a_header_without_a_mapped_column_stops_and_nothing_is_printed_after(
    tmp_path: Path, encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "till.csv"
    path.write_text(HEADER.replace("UnitPrice", "Price") + "\n", encoding=encoding)
    ignored: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)

    with pytest.raises(InputError, match="UnitPrice: is named by the mapping"):
        split(read_csv(path, make_mapping(encoding=encoding)))
    gc.collect()

    assert ignored == []


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        pytest.param(
            (HEADER + "\n" + GOOD + "\n").encode(),
            "it does not look like UTF-16 (too few zero bytes): set `encoding:` "
            "to the one it was saved in, such as utf-8 or latin-1",
            id="utf-8",
        ),
        pytest.param(
            (HEADER + "\n" + GOOD + "\n").encode("utf-16-le"),
            "if it is UTF-16 without one, say `encoding: utf-16-le` (or `utf-16-be`)",
            id="utf-16-without-bom",
        ),
    ],
)
def test_a_file_read_as_utf16_without_a_byte_order_mark_stops_naming_why(
    tmp_path: Path, read: Read, data: bytes, hint: str
) -> None:
    path = tmp_path / "till.csv"
    path.write_bytes(data)

    with pytest.raises(InputError) as caught:
        read(path, make_mapping(encoding="utf-16"))

    assert str(caught.value) == (
        f"{path}: the mapping says `encoding: utf-16`, but the file does not "
        "start with a byte order mark, which UTF-16 needs to tell its byte "
        f"order; {hint}"
    )


def test_a_utf16_line_that_does_not_decode_is_one_reject_and_the_rest_imports(
    tmp_path: Path, read: Read
) -> None:
    path = tmp_path / "till.csv"
    lone_surrogate = b"\x00\xd8"
    head, tail = row().split("WARMER")
    data = (HEADER + "\n" + GOOD + "\n" + head).encode("utf-16") + lone_surrogate
    path.write_bytes(data + (tail + "\n" + row("536367") + "\n").encode("utf-16-le"))

    events, errors = read(path, make_mapping(encoding="utf-16"))

    assert [event.event_id[-6:] for event in events] == ["536365", "536367"]
    assert [(error.line, error.errors) for error in errors] == [
        (
            3,
            [
                (
                    "(line)",
                    "not utf-16 text (bytes 0x00 0xd8); save the file as utf-16 "
                    "or set `encoding:` in the mapping",
                )
            ],
        )
    ]


def test_a_binary_file_stops_with_an_error_naming_it(
    tmp_path: Path, read: Read
) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))

    with pytest.raises(InputError, match=r"photo\.csv: line 1: not UTF-8 text"):
        read(path)


def test_a_giant_field_rejects_its_row_and_the_next_row_imports(
    write_csv: Callable[..., Path], read: Read
) -> None:
    path = write_csv(GOOD, row(quantity="6" * 20_000_000), row("536367"))

    events, errors = read(path)

    assert [event.event_id[-6:] for event in events] == ["536365", "536367"]
    assert [error.line for error in errors] == [3]
    assert "a field is longer than 131,072 characters" in str(errors[0])
    assert errors[0].raw[:1] == ["536366"]  # type: ignore[attr-defined]


def test_a_giant_field_takes_its_transaction_with_it(
    write_csv: Callable[..., Path], read: Read
) -> None:
    path = write_csv(row(), row(quantity="6" * 200_000), row("536367"))

    events, errors = read(path)

    assert [event.event_id[-6:] for event in events] == ["536367"]
    assert [error.line for error in errors] == [2, 3]


def invoices(first: int, count: int) -> list[str]:
    return [row(str(number)) for number in range(first, first + count)]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (
            '536364,22633,"HAND WARMER,6,2010-12-01 08:28:00,2.55,17850.0,UK',
            "opens a quote that is not closed within 20 lines",
        ),
        (
            '536364,22633,HAND WARMER,6,2010-12-01 08:28:00,2.55,17850.0,"UK',
            "opens a quote that is not closed within 20 lines",
        ),
    ],
    ids=["in the description", "in the last column"],
)
def test_an_unclosed_quote_loses_only_its_own_line(
    write_csv: Callable[..., Path], read: Read, broken: str, reason: str
) -> None:
    path = write_csv(GOOD, broken, *invoices(600_000, 3_000))

    events, errors = read(path)

    assert len(events) == 1 + 3_000
    assert events[1].event_id == "online-retail:600000"
    assert [(error.line, error.transaction_id) for error in errors] == [(3, "536364")]
    assert errors[0].errors == [("(row)", reason)]
    assert errors[0].raw[:2] == ["536364", "22633"]  # type: ignore[attr-defined]


def test_a_quote_closed_lines_later_gives_back_the_lines_between(
    write_csv: Callable[..., Path], read: Read
) -> None:
    broken = '536364,22633,"HAND WARMER,6,2010-12-01 08:28:00,2.55,17850.0,UK'
    quoted = '536399,22633,"HAND WARMER, RED",6,2010-12-01 08:28:00,2.55,17850.0,UK'
    path = write_csv(broken, *invoices(600_000, 3), quoted)

    events, errors = read(path)

    assert [event.event_id[-6:] for event in events] == [
        "600000", "600001", "600002", "536399",
    ]  # fmt: skip
    assert events[-1].lines[0].description == "HAND WARMER, RED"
    assert [error.line for error in errors] == [2]
    assert errors[0].errors[0][1] == (
        "opens a quote that runs on to line 6, where a quoted field is followed "
        "by more text before the next ',': a stray quote?"
    )


def test_a_quote_left_open_at_the_end_of_the_file_loses_only_its_line(
    write_csv: Callable[..., Path], read: Read
) -> None:
    broken = '536364,22633,"HAND WARMER,6,2010-12-01 08:28:00,2.55,17850.0,UK'
    path = write_csv(GOOD, broken, *invoices(600_000, 2))

    events, errors = read(path)

    assert [event.event_id[-6:] for event in events] == ["536365", "600000", "600001"]
    assert [error.line for error in errors] == [3]


@pytest.mark.parametrize("at_the_end", [False, True], ids=["mid-file", "at the end"])
def test_a_stray_quote_closed_in_a_last_column_gives_back_the_rows_between(
    write_csv: Callable[..., Path], read: Read, at_the_end: bool
) -> None:
    """The swallowed rows leave the field its right width; their commas show them."""
    broken = '536364,22633,HAND WARMER,6,2010-12-01 08:28:00,2.55,17850.0,"UK'
    closing = '536399,22633,HAND WARMER,6,2010-12-01 08:28:00,2.55,17850.0,"UK"'
    rows = [broken, *invoices(600_000, 3)] + ([] if at_the_end else [closing])
    path = write_csv(*rows)

    events, errors = read(path)

    expected = ["600000", "600001", "600002"] + ([] if at_the_end else ["536399"])
    assert [event.event_id[-6:] for event in events] == expected
    assert [error.line for error in errors] == [2]
    assert errors[0].errors[0][1] == (
        "opens a quote that the file never closes"
        if at_the_end
        else "opens a quote that runs on to line 6, where a quoted field is "
        "followed by more text before the next ',': a stray quote?"
    )


def test_two_stray_quotes_never_merge_or_lose_rows(
    write_csv: Callable[..., Path], read: Read
) -> None:
    """A quote put at every field edge of one row, and of a later one."""
    rows = [
        f"{9000 + i},S{i},ITEM {i},{i + 1},2010-12-01 0{i}:00:00,{i}.50,{900 + i}.0,UK"
        for i in range(3)
    ]

    def edges(text: str) -> list[int]:
        commas = [i for i, char in enumerate(text) if char == ","]
        return [0, *commas, *(i + 1 for i in commas), len(text)]

    for a, b in [(0, 1), (0, 2), (1, 2)]:
        for at_a in edges(rows[a]):
            for at_b in edges(rows[b]):
                broken = list(rows)
                broken[a] = rows[a][:at_a] + '"' + rows[a][at_a:]
                broken[b] = rows[b][:at_b] + '"' + rows[b][at_b:]

                events, _ = read(write_csv(*broken))

                kept = set()
                for event in events:  # whatever came through is a row as written
                    i = int(event.event_id.split(":")[1].strip('"')) - 9000
                    customer = (event.identity.customer_id or "").strip('"')
                    assert customer == str(900 + i), broken
                    assert event.total == (i + 1) * (i + Decimal("0.5")), broken
                    kept.add(i)
                assert kept >= {0, 1, 2} - {a, b}, broken


def test_a_quoted_field_may_hold_line_breaks_when_the_mapping_says_so(
    write_csv: Callable[..., Path], read: Read
) -> None:
    two_lines = '536364,22633,"HAND WARMER\nRED",6,2010-12-01 08:28:00,2.55,17850.0,UK'
    path = write_csv(two_lines, *invoices(600_000, 2))

    events, errors = read(path, make_mapping(multiline_fields=True))
    strict_events, strict_errors = read(path)

    assert errors == []
    assert events[0].lines[0].description == "HAND WARMER\nRED"
    assert [event.event_id[-6:] for event in events[1:]] == ["600000", "600001"]
    assert [error.line for error in strict_errors] == [2, 3]  # both halves kept
    assert "multiline_fields: true" in str(strict_errors[0])
    assert [event.event_id[-6:] for event in strict_events] == ["600000", "600001"]


@pytest.mark.parametrize(
    "broken",
    [
        '"' + row("536401"),
        row('5364"01'),
        '"' + row("536401").replace(",2.55", '",2.55'),
    ],
    ids=["at the start of the line", "in the id", "closed mid-row"],
)
def test_a_stray_quote_holds_back_its_whole_sale(
    write_csv: Callable[..., Path], read: Read, broken: str
) -> None:
    path = write_csv(broken, row("536401"), row("536402"))

    events, errors = read(path)

    assert [event.event_id[-6:] for event in events] == ["536402"]
    assert [(error.line, error.transaction_id) for error in errors] == [
        (2, "536401"),
        (3, "536401"),
    ]


def test_a_missing_column_is_named_once_even_if_mapped_twice(
    write_csv: Callable[..., Path], read: Read
) -> None:
    line = make_mapping().line.model_dump(exclude_none=True)
    mapping = make_mapping(
        transaction_id="Invoice", line={**line, "line_id": "Invoice"}
    )
    path = write_csv(GOOD)

    with pytest.raises(InputError) as caught:
        read(path, mapping)

    assert caught.value.errors == [
        ("Invoice", f"is named by the mapping but missing from the header of {path}")
    ]


def test_a_mapped_column_twice_in_the_header_stops_the_import(
    write_csv: Callable[..., Path], read: Read
) -> None:
    header = HEADER.replace("Country", "Quantity")
    path = write_csv(GOOD, header=header)

    with pytest.raises(InputError) as caught:
        read(path)

    assert caught.value.errors == [
        (
            "Quantity",
            f"is in the header of {path} 2 times (columns 4, 8): the mapping "
            "cannot tell which it means",
        )
    ]


def test_an_unmapped_column_twice_in_the_header_does_no_harm(
    write_csv: Callable[..., Path], read: Read
) -> None:
    path = write_csv(GOOD + ",x,y", header=HEADER + ",Note,Note")

    events, errors = read(path)

    assert errors == [] and len(events) == 1


def test_identical_lines_of_a_transaction_are_two_of_the_same_item(
    write_csv: Callable[..., Path], read: Read
) -> None:
    path = write_csv(row(), row())

    events, errors = read(path)

    assert errors == [] and len(events[0].lines) == 2
    assert events[0].total == Decimal("30.60")


@pytest.mark.parametrize("text", ["", HEADER + "\n"])
def test_an_empty_or_header_only_file_yields_nothing(tmp_path: Path, text: str) -> None:
    path = tmp_path / "till.csv"
    path.write_text(text, encoding="utf-8")

    assert list(read_csv(path, make_mapping())) == []


def test_a_file_with_classic_mac_line_ends_imports(tmp_path: Path, read: Read) -> None:
    path = tmp_path / "till.csv"
    path.write_bytes("\r".join([HEADER, GOOD, row()]).encode() + b"\r")

    events, errors = read(path)

    assert errors == [] and len(events) == 2
