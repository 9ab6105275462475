"""Mapping files are checked, and a mistake names its key and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import EXAMPLE_MAPPING

from tillsight.errors import ConfigError
from tillsight.ingest import load_mapping, parse_mapping

VALID = """\
source: till
transaction_id: txn
time:
  column: at
  zone: Europe/London
line:
  sku: sku
  quantity: qty
  unit_price: price
currency: {constant: GBP}
returns:
  transaction_id_prefix: R
"""


def test_the_online_retail_example_loads():
    mapping = load_mapping(EXAMPLE_MAPPING)

    assert mapping.event_id("536365") == "online-retail:536365"
    assert mapping.classify("POST", "POSTAGE") == (
        "excluded",
        frozenset({"excluded", "non-product", "postage"}),
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "  zone: Europe/London",
            "  zone: Europe/Londn",
            "line 5: time.zone: 'Europe/Londn' is not an IANA time zone",
        ),
        (
            "quantity: qty",
            "quantity: qty\n  colour: red",
            "line 9: line.colour: Extra inputs",
        ),
        (
            "  transaction_id_prefix: R",
            "  transaction_id_prefix: R\n  negative_quantity: true",
            "line 11: returns: give exactly one of",
        ),
        (
            "{constant: GBP}",
            "{constant: GBP, column: cur}",
            "line 10: currency: give exactly one of 'column' or 'constant'",
        ),
        (
            "returns:",
            "line_rules:\n  - sku_pattern: '(('\nreturns:",
            "line 12: line_rules.0: '((' is not a regex",
        ),
        ("transaction_id: txn\n", "", "line 1: transaction_id: Field required"),
        (
            "  column: at",
            "  column: at\n  format: '%d/%m/%Q'",
            "line 5: time.format: '%d/%m/%Q' is not 'iso' or a strptime format",
        ),
        (
            "  column: at",
            "  column: at\n  format: daily",
            "line 5: time.format: 'daily' is not 'iso' or a strptime format",
        ),
        (
            "{constant: GBP}",
            "{constant: pounds}",
            "line 10: currency: 'pounds' is not a three-letter currency code",
        ),
        *(
            (
                "  column: at",
                f"  column: at\n  format: '{format}'",
                f"line 5: time.format: '{format}' is not 'iso' or a strptime "
                "format that reads a date",
            )
            for format in ("%d", "%Y", "%%", "%H:%M", "%Y-%m")
        ),
        (
            "  column: at",
            "  column: at\n  format: '%Y-%m-%d %I:%M'",
            "line 5: time.format: '%Y-%m-%d %I:%M' reads a 12-hour clock (%I) "
            "without AM or PM (%p)",
        ),
    ],
)
def test_a_mistake_names_the_key_and_its_line(old, new, message):
    text = VALID.replace(old, new, 1)

    with pytest.raises(ConfigError) as caught:
        parse_mapping(text, name="m.yaml")

    assert f"m.yaml: {message}" in str(caught.value)


def test_a_file_that_is_not_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_mapping("source: [", name="m.yaml")


def test_a_file_that_is_not_utf8_is_a_config_error_naming_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "latin1.yaml"
    text = VALID.replace("source: till\n", "source: till\n# prices in £\n")
    path.write_bytes(text.encode("latin-1"))

    with pytest.raises(ConfigError) as caught:
        load_mapping(path)

    assert str(caught.value) == (
        f"line 2: {path}: not UTF-8 (byte 0xa3); save the file as UTF-8"
    )


def test_the_first_rule_with_a_role_wins_and_every_rule_tags():
    text = VALID + (
        "line_rules:\n"
        "  - description_pattern: (?i)screening\n"
        "    tags: [preventative-screening]\n"
        "  - skus: [S1]\n"
        "    role: discount\n"
        "  - skus: [S1]\n"
        "    role: excluded\n"
        "    tags: [late]\n"
    )

    role, tags = parse_mapping(text).classify("S1", "Eye screening")

    assert role == "discount"
    assert tags == {"preventative-screening", "late", "discount"}


def test_a_currency_constant_is_read_in_capitals():
    mapping = parse_mapping(VALID.replace("{constant: GBP}", "{constant: gbp}"))

    assert mapping.currency.constant == "GBP"


@pytest.mark.parametrize(
    "format",
    [
        "%Y-%m-%dT%H:%M:%S%z",
        "%d/%m/%Y %H:%M %Z",
        "%d/%m/%y",
        "%Y%j",
        "%d/%m/%Y %I:%M %p",
    ],
)
def test_a_format_that_reads_a_date_is_taken(format):
    text = VALID.replace("  column: at", f"  column: at\n  format: '{format}'", 1)

    assert parse_mapping(text, name="m.yaml").time.format == format
