"""The CSV reader: good transactions become events, bad rows are rejected whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import HEADER, make_mapping, split

from tillsight.core.events import EventType, Line
from tillsight.errors import InputError
from tillsight.ingest import RejectedRow, read_csv
from tillsight.ingest.csv_source import _new_line

SALE = "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,UK"
SALE_2 = "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,UK"
NEXT = "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850.0,UK"


def test_a_sale_becomes_one_purchase_with_exact_totals(write_csv, read):
    path = write_csv(SALE, SALE_2, NEXT)

    events, errors = read(path)

    assert errors == []
    assert [e.event_id for e in events] == [
        "online-retail:536365",
        "online-retail:536366",
    ]
    first = events[0]
    assert first.type is EventType.PURCHASE
    assert first.total == Decimal("35.64")
    assert [line.total for line in first.lines] == [Decimal("15.30"), Decimal("20.34")]
    assert first.identity.customer_id == "17850"
    assert (first.store, first.channel, first.currency) == (
        "uk-online",
        "online",
        "GBP",
    )
    assert first.source == "online-retail"


def test_a_time_without_offset_is_read_in_the_mapping_zone(write_csv, read):
    summer = SALE.replace("2010-12-01 08:26:00", "2011-06-01 08:26:00")

    events, _ = read(write_csv(summer))

    assert events[0].occurred_at.utcoffset() == timedelta(hours=1)
    assert events[0].occurred_at.astimezone(UTC) == datetime(
        2011, 6, 1, 7, 26, tzinfo=UTC
    )


def test_an_ambiguous_fall_back_time_is_read_as_its_first_occurrence(write_csv, read):
    ambiguous = SALE.replace("2010-12-01 08:26:00", "2010-10-31 01:30:00")

    events, errors = read(write_csv(ambiguous))

    assert errors == []
    assert events[0].occurred_at.astimezone(UTC) == datetime(
        2010, 10, 31, 0, 30, tzinfo=UTC
    )


def test_a_return_has_positive_quantities_and_total(write_csv, read):
    cancel = "C536379,22556,PLASTERS IN TIN,-12,2010-12-01 09:41:00,1.65,14527.0,UK"

    events, _ = read(write_csv(cancel))

    assert events[0].type is EventType.RETURN
    assert events[0].event_id == "online-retail:C536379"
    assert events[0].lines[0].quantity == 12
    assert events[0].total == Decimal("19.80")
    assert events[0].refunds_event_id is None


def test_a_row_with_an_empty_customer_is_a_guest_sale(write_csv, read):
    guest = SALE.replace("17850.0", "")

    events, _ = read(write_csv(guest))

    assert events[0].is_guest
    assert events[0].identity.customer_id is None


def test_a_quoted_description_with_commas_is_one_field(write_csv, read):
    row = '536520,21123,"SET/10 CANDLES, BOXED",2,2010-12-01 12:43:00,1.25,14729.0,UK'

    events, errors = read(write_csv(row))

    assert errors == []
    assert events[0].lines[0].description == "SET/10 CANDLES, BOXED"


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        pytest.param(
            SALE_2.replace("2010-12-01 08:26:00", "2011-13-01 08:26:00"),
            "line 3: InvoiceDate: '2011-13-01 08:26:00' is not a date in format "
            "%Y-%m-%d %H:%M:%S",
            id="bad-date",
        ),
        pytest.param(
            SALE_2.replace(",6,", ",six,"),
            "line 3: Quantity: 'six' is not a number",
            id="bad-quantity",
        ),
        pytest.param(
            SALE_2.replace(",3.39,", ',"3,39",'),
            "line 3: UnitPrice: '3,39' is not a number",
            id="bad-price",
        ),
        pytest.param(
            SALE_2.rsplit(",", 2)[0],
            "line 3: (row): has 6 fields but the header has 8",
            id="missing-column",
        ),
        pytest.param(
            SALE_2.replace(",71053,", ",,"),
            "line 3: StockCode: is empty",
            id="empty-sku",
        ),
        pytest.param(
            SALE_2.replace("2010-12-01 08:26:00", "2011-03-27 01:30:00"),
            "line 3: InvoiceDate: '2011-03-27 01:30:00' does not exist in "
            "Europe/London (the clocks went forward past it)",
            id="nonexistent-local-time",
        ),
        pytest.param(
            SALE_2.replace("17850.0", "1.785E+4"),
            "line 3: CustomerID: '1.785E+4' looks like a number, not an id; "
            "export ids as text",
            id="float-looking-id",
        ),
        pytest.param(
            SALE_2.replace(",6,", ",0,"),
            "line 3: Quantity: '0': a line must move at least one unit",
            id="zero-quantity",
        ),
        pytest.param(
            SALE_2.replace("17850.0", "12583.0"),
            "line 3: CustomerID: line 3 has '12583' but line 2, the first of "
            "transaction '536365', has '17850'",
            id="customer-changes-mid-transaction",
        ),
        pytest.param(
            SALE_2.replace("2010-12-01 08:26:00", "2010-12-05 08:26:00"),
            "line 3: InvoiceDate: line 3 has '2010-12-05 08:26:00' but line 2, "
            "the first of transaction '536365', has '2010-12-01 08:26:00': more "
            "than an hour apart, so two sales under one number?",
            id="time-changes-mid-transaction",
        ),
        pytest.param(
            SALE_2.replace("17850.0", "1785\x1b0.0"),
            "line 3: CustomerID: '1785\\x1b0.0' holds the control character "
            "'\\x1b' at character 5; remove it",
            id="escape-in-customer-id",
        ),
        pytest.param(
            SALE_2.replace("17850.0", "178\x0050.0"),
            "line 3: CustomerID: '178\\x0050.0' holds the control character "
            "'\\x00' at character 4; remove it",
            id="nul-in-customer-id",
        ),
    ],
)
def test_a_bad_row_is_rejected_with_its_transaction(write_csv, read, bad_row, message):
    path = write_csv(SALE, bad_row, NEXT)

    events, errors = read(path)

    assert [e.event_id for e in events] == ["online-retail:536366"]
    by_line = {error.line: error for error in errors}
    assert str(by_line[3]) == message
    sibling = str(by_line[2])
    assert "whole or not at all" in sibling or sibling == message.replace(
        "line 3:", "line 2:", 1
    )


@pytest.mark.parametrize(
    ("old", "new", "column"),
    [
        ("17850.0", "17850\x1b", "CustomerID"),
        (",6,", ",6\x07,", "Quantity"),
        ("3.39", "3.3\x009", "UnitPrice"),
        ("08:26:00", "08:26\x1b:00", "InvoiceDate"),
    ],
)
def test_a_control_character_is_named_as_an_escape_never_shown_raw(
    write_csv, read, old, new, column
):
    path = write_csv(SALE, SALE_2.replace(old, new), NEXT)

    _, errors = read(path)

    field, reason = errors[1].errors[0]
    control = next(char for char in new if not char.isprintable())
    escape = control.encode("unicode_escape").decode()
    assert (errors[1].line, field) == (3, column)
    assert f"holds the control character '{escape}' at character" in reason
    assert reason.isprintable()


def test_lines_of_a_sale_a_minute_apart_are_one_event_at_the_first_time(
    write_csv, read
):
    later = SALE_2.replace("08:26:00", "08:27:00")

    events, errors = read(write_csv(SALE, later))

    assert errors == []
    assert [len(e.lines) for e in events] == [2]
    assert events[0].occurred_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)


def test_a_bad_customer_id_is_rejected_on_every_transaction_that_carries_it(
    write_csv, read
):
    rows = (SALE, SALE_2, NEXT)

    events, errors = read(write_csv(*(r.replace("17850.0", "1.8E+4") for r in rows)))

    assert events == []
    assert [error.line for error in errors] == [2, 3, 4]
    assert "looks like a number" in str(errors[2])


def test_the_siblings_of_a_bad_row_name_it(write_csv, read):
    path = write_csv(SALE, SALE_2.replace(",6,", ",six,"))

    _, errors = read(path)

    assert str(errors[0]) == (
        "line 2: InvoiceNo: rejected with line 3 of the same transaction: "
        "a transaction is imported whole or not at all"
    )
    assert isinstance(errors[0], RejectedRow)
    assert errors[0].raw == SALE.split(",")


def test_a_transaction_whose_lines_are_apart_is_one_event_of_all_its_lines(
    write_csv, read
):
    path = write_csv(SALE, NEXT, SALE_2)

    events, errors = read(path)

    assert errors == []
    assert [(e.event_id, len(e.lines)) for e in events] == [
        ("online-retail:536366", 1),
        ("online-retail:536365", 2),
    ]
    assert [line.sku for line in events[1].lines] == ["85123A", "71053"]
    assert events[1].total == Decimal("35.64")


def test_a_scattered_transaction_with_a_bad_line_is_rejected_whole(write_csv, read):
    bad = SALE_2.replace(",6,", ",six,")
    path = write_csv(SALE, NEXT, bad, NEXT.replace("536366", "536367"))

    events, errors = read(path)

    assert [e.event_id[-6:] for e in events] == ["536366", "536367"]
    assert [(error.line, error.transaction_id) for error in errors] == [
        (2, "536365"),
        (4, "536365"),
    ]
    assert "rejected with line 4 of the same transaction" in str(errors[0])


def test_negative_quantities_without_a_return_marker_are_rejected(write_csv, read):
    adjustment = "536589,21777,,-10,2010-12-01 16:50:00,0.0,,UK"

    events, errors = read(write_csv(adjustment))

    assert events == []
    assert "neither a sale nor a return" in str(errors[0])


def test_a_return_with_mixed_signs_is_rejected(write_csv, read):
    rows = (
        "C536379,22556,PLASTERS,-12,2010-12-01 09:41:00,1.65,14527.0,UK",
        "C536379,22557,PLASTERS,3,2010-12-01 09:41:00,1.65,14527.0,UK",
    )

    _, errors = read(write_csv(*rows))

    assert [error.line for error in errors] == [2, 3]
    assert all("mixes signs" in str(error) for error in errors)


def test_a_free_line_is_kept_with_total_zero(write_csv, read):
    free = SALE_2.replace(",3.39,", ",0.0,")

    events, errors = read(write_csv(SALE, free))

    assert errors == []
    assert events[0].lines[1].total == 0
    assert events[0].total == Decimal("15.30")


def test_a_transaction_without_any_price_is_rejected_when_the_mapping_says(
    write_csv, read
):
    stock_move = "536414,22139,,56,2010-12-01 11:52:00,0.0,,UK"

    kept, _ = read(write_csv(stock_move), make_mapping(reject_unpriced=False))
    rejected, errors = read(write_csv(stock_move), make_mapping())

    assert kept[0].total == 0
    assert rejected == []
    assert "reject_unpriced" in str(errors[0])


def test_a_discount_line_lowers_a_purchase_and_postage_does_not_count(write_csv, read):
    rows = (
        SALE,
        "536365,D,Discount,1,2010-12-01 08:26:00,5.00,17850.0,UK",
        "536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.00,17850.0,UK",
    )

    events, _ = read(write_csv(*rows))

    discount, postage = events[0].lines[1:]
    assert events[0].total == Decimal("10.30")
    assert (discount.unit_price, discount.total) == (Decimal("-5.00"), Decimal("-5.00"))
    assert {"discount", "non-product"} <= discount.tags
    assert {"excluded", "postage"} <= postage.tags


def test_a_discount_on_a_cancellation_invoice_is_refunded(write_csv, read):
    row = "C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527.0,UK"

    events, _ = read(write_csv(row))

    assert events[0].type is EventType.RETURN
    assert events[0].total == Decimal("27.50")


def test_a_gift_voucher_line_is_tagged_by_pattern(write_csv, read):
    row = SALE.replace("85123A", "gift_0001_40")

    events, _ = read(write_csv(row))

    assert events[0].lines[0].tags == {"gift-voucher"}


@pytest.mark.parametrize("customer", ["123456789012345678", "4503599627370497"])
def test_a_long_numeric_customer_id_stays_an_exact_string(write_csv, read, customer):
    events, _ = read(write_csv(SALE.replace("17850.0", customer)))

    assert events[0].identity.customer_id == customer


def test_returns_told_by_a_type_column_link_to_the_sale(write_csv, read):
    header = "txn,kind,refunds,sku,qty,price,at,currency"
    rows = ("R1,refund,S9,A-1,2,5.00,2024-03-01T10:00:00+00:00,eur",)
    mapping = make_mapping(
        source="till",
        transaction_id="txn",
        time={"column": "at", "zone": "Europe/Paris"},
        customer={},
        line={"sku": "sku", "quantity": "qty", "unit_price": "price"},
        currency={"column": "currency"},
        returns={
            "type_column": "kind",
            "type_value": "refund",
            "refunds_column": "refunds",
        },
        line_rules=[],
        reject_unpriced=False,
    )

    events, errors = read(write_csv(*rows, header=header), mapping)

    assert errors == []
    assert events[0].type is EventType.RETURN
    assert events[0].refunds_event_id == "till:S9"
    assert events[0].currency == "EUR"
    assert events[0].is_guest


def test_returns_told_by_negative_quantity(write_csv, read):
    mapping = make_mapping(returns={"negative_quantity": True})
    refund = (
        "R536366,22633,HAND WARMER UNION JACK,-2,2010-12-01 08:28:00,1.85,17850.0,UK"
    )

    events, _ = read(write_csv(SALE, refund), mapping)

    assert [e.type for e in events] == [EventType.PURCHASE, EventType.RETURN]


def test_a_header_without_a_mapped_column_is_an_input_error(write_csv):
    path = write_csv("536365,85123A,2", header="InvoiceNo,StockCode,Quantity")

    with pytest.raises(InputError, match="InvoiceDate: is named by the mapping"):
        list(read_csv(path, make_mapping()))


def test_the_fast_line_builder_makes_the_same_line_as_the_class():
    args = ("A", Decimal(2), Decimal("1.5"), Decimal(3), "thing", frozenset({"x"}))

    assert _new_line(*args) == Line(*args)


amounts = st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False)
quantities = st.integers(min_value=1, max_value=1_000)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(quantities, amounts), min_size=1, max_size=20))
def test_money_is_exact_decimal_and_lines_sum_to_the_total(tmp_path, items):
    rows = [
        f"9,SKU{i},,{quantity},2011-01-04 10:00:00,{price},12345.0,UK"
        for i, (quantity, price) in enumerate(items)
    ]
    path = tmp_path / "prop.csv"  # overwritten by each example
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    events, _ = split(read_csv(path, make_mapping(reject_unpriced=False)))

    event = events[0]
    assert isinstance(event.total, Decimal)
    assert all(isinstance(line.total, Decimal) for line in event.lines)
    assert event.total == sum((q * p for q, p in items), Decimal(0))
    assert event.total == sum((line.total for line in event.lines), Decimal(0))
