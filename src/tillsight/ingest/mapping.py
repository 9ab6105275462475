"""The mapping file: which columns of a till's export mean what.

A mapping is YAML, checked by Pydantic; a mistake is reported with the key and
the line of the file it sits on. ``examples/mappings/online-retail.yaml`` is a
commented, complete example.

What the CSV reader accepts, whatever the mapping says:

- ``encoding`` names the file's text encoding (``latin-1``, ``cp1252``...);
  a UTF-8 byte order mark is dropped. A line that does not decode is rejected
  on its own, as is a row with a field over 131,072 characters.
- A quantity is under ``QUANTITY_LIMIT`` (10^6) in size; a unit price, a
  total or a discount under ``AMOUNT_LIMIT`` (10^9 in the currency), and so
  is the line total computed from them and the transaction's total. Each
  number has at most ``DECIMAL_PLACES`` (6) decimal places. The bounds live
  in :mod:`tillsight.ingest.canonical`, shared with JSON events.
- Two identical lines in one transaction are two of the same item, and both
  count: a till writes a line per scan.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tillsight.errors import ConfigError
from tillsight.ingest.canonical import DISCOUNT_TAG, EXCLUDED_TAG
from tillsight.yamlfile import line_of, read_text, read_yaml

LineRole = Literal["product", "excluded", "discount"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueSource(_Strict):
    """A value read from a column or the same constant for every row."""

    column: str | None = None
    constant: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueSource:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' or 'constant'")
        return self


class TimeSpec(_Strict):
    """Where the time is and how to read it."""

    column: str
    format: str = "iso"
    zone: str

    @field_validator("format")
    @classmethod
    def _readable_format(cls, format: str) -> str:
        """Keep a format that reads back the date of a time it wrote.

        A format without the year, the month or the day (``%d``, ``%Y``,
        ``%%``, a word) would read every row as a day in 1900, or as none.
        """
        if format == "iso":
            return format
        sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)  # UTC: %z and %Z read
        try:
            read = datetime.strptime(sample.strftime(format), format)
        except ValueError:
            read = None
        if "%I" in format and "%p" not in format:
            raise ValueError(
                f"{format!r} reads a 12-hour clock (%I) without AM or PM (%p), "
                "so afternoon sales would read 12 hours early; use %H or add %p"
            )
        if read is None or read.date() != sample.date():
            raise ValueError(
                f"{format!r} is not 'iso' or a strptime format that reads a date, "
                "such as '%d/%m/%Y %H:%M'"
            )
        return format

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{zone!r} is not an IANA time zone such as Europe/London"
            ) from None
        return zone

    @property
    def tzinfo(self) -> ZoneInfo:
        """The zone that a time without offset is read in."""
        return ZoneInfo(self.zone)


class CustomerSpec(_Strict):
    """The identity columns; a row whose columns are all empty is a guest's."""

    customer_id: str | None = None
    loyalty_id: str | None = None
    email: str | None = None
    phone: str | None = None
    strip_float_suffix: bool = False
    guest_values: list[str] = Field(default_factory=lambda: [""])


class LineColumns(_Strict):
    """The columns of one line."""

    sku: str
    description: str | None = None
    quantity: str
    unit_price: str
    total: str | None = None
    discount: str | None = None
    line_id: str | None = None


class ReturnSpec(_Strict):
    """How a return is told apart from a sale: exactly one way."""

    transaction_id_prefix: str | None = None
    negative_quantity: bool = False
    type_column: str | None = None
    type_value: str | None = None
    refunds_column: str | None = None

    @model_validator(mode="after")
    def _exactly_one_way(self) -> ReturnSpec:
        ways = [
            self.transaction_id_prefix is not None,
            self.negative_quantity,
            self.type_column is not None,
        ]
        if sum(ways) != 1:
            raise ValueError(
                "give exactly one of 'transaction_id_prefix', "
                "'negative_quantity: true' or 'type_column' with 'type_value'"
            )
        if (self.type_column is None) != (self.type_value is None):
            raise ValueError("'type_column' and 'type_value' go together")
        return self


class LineRule(_Strict):
    """Tags and a role for the lines whose sku or description match."""

    skus: list[str] | None = None
    sku_pattern: str | None = None
    description_pattern: str | None = None
    tags: list[str] = Field(default_factory=list)
    role: LineRole | None = None

    @model_validator(mode="after")
    def _one_test(self) -> LineRule:
        tests = [self.skus, self.sku_pattern, self.description_pattern]
        if sum(test is not None for test in tests) != 1:
            raise ValueError(
                "give exactly one of 'skus', 'sku_pattern' or 'description_pattern'"
            )
        for pattern in (self.sku_pattern, self.description_pattern):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{pattern!r} is not a regex: {exc}") from None
        return self

    def matches(self, sku: str, description: str) -> bool:
        """Say whether this rule applies to a line."""
        if self.skus is not None:
            return sku in self.skus
        if self.sku_pattern is not None:
            return re.search(self.sku_pattern, sku) is not None
        assert self.description_pattern is not None
        return re.search(self.description_pattern, description) is not None


class Mapping(_Strict):
    """Everything the CSV reader needs to know about one till's export."""

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    transaction_id: str
    time: TimeSpec
    customer: CustomerSpec = Field(default_factory=CustomerSpec)
    line: LineColumns
    currency: ValueSource
    store: ValueSource | None = None
    channel: ValueSource | None = None
    returns: ReturnSpec
    line_rules: list[LineRule] = Field(default_factory=list)
    reject_unpriced: bool = False
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    #: Whether a quoted field may hold line breaks. Tills hardly ever write
    #: them, and a stray quote looks just like one, so by default a row that
    #: runs over lines is a broken row.
    multiline_fields: bool = False

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, currency: ValueSource) -> ValueSource:
        code = currency.constant
        if code is None:
            return currency
        if len(code) != 3 or not code.isascii() or not code.isalpha():
            raise ValueError(
                f"{code!r} is not a three-letter currency code such as GBP"
            )
        return currency.model_copy(update={"constant": code.upper()})

    def classify(self, sku: str, description: str) -> tuple[LineRole, frozenset[str]]:
        """Give a line its role (first rule that sets one) and every matching tag."""
        role: LineRole | None = None
        tags: set[str] = set()
        for rule in self.line_rules:
            if rule.matches(sku, description):
                tags.update(rule.tags)
                role = role or rule.role
        role = role or "product"
        if role == "excluded":
            tags.add(EXCLUDED_TAG)
        elif role == "discount":
            tags.add(DISCOUNT_TAG)
        return role, frozenset(tags)

    def event_id(self, transaction_id: str) -> str:
        """Name an event after its source and the till's transaction id."""
        return f"{self.source}:{transaction_id}"


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file; raise ``ConfigError`` naming key and line."""
    path = Path(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the mapping: {exc}") from exc
    return parse_mapping(text, name=str(path))


def parse_mapping(text: str, *, name: str = "<mapping>") -> Mapping:
    """Check mapping YAML given as text."""
    data, root = read_yaml(text, name)
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        messages = [_describe(error, root, name) for error in exc.errors()]
        raise ConfigError("\n".join(messages)) from exc


def _describe(error: Any, root: yaml.Node, name: str) -> str:
    loc: tuple[int | str, ...] = error["loc"]
    key = ".".join(str(part) for part in loc) or "(top)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}: line {line_of(root, loc)}: {key}: {message}"
