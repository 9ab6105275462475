"""Read a till's CSV export into events, one transaction at a time.

The file is read twice and streamed both times. The first pass notes every
transaction id, to find the transactions whose lines are not all together
(an export sorted by time interleaves two tills); the second builds events,
holding one transaction's rows at a time, plus the rows of a scattered
transaction until its last line is read.

Rules, so that the same file always gives the same events:

- The lines of a transaction need not be consecutive; its event is made when
  its last line is read, and its first line gives the shared values.
- A quoted field may hold line breaks, but a row that runs over more than
  twenty lines, or over several lines to the wrong number of fields, is a
  quote that was never closed: its first line is rejected and reading goes
  on from the line after it, so no other row is lost.
- A transaction is all or nothing: one bad row rejects its siblings too.
- The time, customer, store, channel and currency come from the first row;
  a later row may carry another time up to an hour away (Online Retail's
  differ by a minute), but a time further off, or a different customer,
  store, channel, currency or return marker, is an error: two sales under
  one number, which no choice of values would import right.
- A line with quantity zero is an error; a line with price zero is kept, as a
  free item with total zero. With ``reject_unpriced`` a transaction whose
  lines all have price zero is rejected (Online Retail records stock moves
  that way).
- A sale has positive quantities; a return's lines may all be negative (they
  are turned positive) or all positive. A transaction without the return
  marker but with a negative quantity is neither, and is rejected; so is a
  return with mixed signs. Discount lines are left out of the sign test.
- A line's total is its total column, or quantity × unit price, less its
  discount column. Arithmetic is exact; nothing is ever a float.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, Inexact, InvalidOperation
from operator import itemgetter
from pathlib import Path
from typing import cast

from tillsight.core.events import Event, EventType, Identity, Line
from tillsight.errors import InputError, RowError
from tillsight.ingest.canonical import (
    AMOUNT,
    EXCLUDED_TAG,
    NOT_WRITTEN_AS_A_NUMBER,
    QUANTITY,
    WRITTEN_NUMBER,
    Bound,
    localize,
    plain,
)
from tillsight.ingest.mapping import (
    CustomerSpec,
    LineRole,
    Mapping,
    TimeSpec,
    ValueSource,
)
from tillsight.ingest.rejects import REJECT_COLUMNS, RejectedRow
from tillsight.ingest.textfile import TextLines, open_binary

_EXACT = Context(prec=60, traps=[InvalidOperation, Inexact])
_exact_multiply = _EXACT.multiply
_fits_quantity, _fits_amount, _STEP = QUANTITY.fits, AMOUNT.fits, AMOUNT.step
_AMOUNT_LIMIT = AMOUNT.limit
_ZERO = Decimal(0)
_SHARED_NAMES = (
    "customer_id",
    "loyalty_id",
    "email",
    "phone",
    "store",
    "channel",
    "currency",
    "return_type",
    "refunds",
)
_CACHE_SIZE = 50_000
_is_simple = re.compile(r"-?[0-9]+(?:\.[0-9]+)?").fullmatch  # else the careful path
_MAX_ROW_LINES = 20
_ISO_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
_find_control = re.compile("[\x00-\x1f\x7f-\x9f]").search
_ID_NAMES = ("customer_id", "loyalty_id", "store", "channel", "refunds")
#: How far apart the times on the lines of one sale may be: a till stamps
#: each line as it is scanned, but not a sale's lines days apart.
_LONGEST_SALE = timedelta(hours=1)

Problems = list[tuple[str, str]]


def _line_maker() -> Callable[
    [str, Decimal, Decimal, Decimal, str, frozenset[str]], Line
]:
    """Make a fast builder of lines that fills their slots directly.

    ``Line`` is frozen, and a frozen dataclass's ``__init__`` took a tenth of
    the reader's time. Safe while ``Line`` has no ``__post_init__``.
    """
    assert not hasattr(Line, "__post_init__")
    new = object.__new__
    set_sku, set_quantity, set_price, set_total, set_description, set_tags, set_id = (
        Line.__dict__[name].__set__ for name in Line.__slots__
    )

    def new_line(
        sku: str,
        quantity: Decimal,
        unit_price: Decimal,
        total: Decimal,
        description: str,
        tags: frozenset[str],
    ) -> Line:
        line: Line = new(Line)
        set_sku(line, sku)
        set_quantity(line, quantity)
        set_price(line, unit_price)
        set_total(line, total)
        set_description(line, description)
        set_tags(line, tags)
        set_id(line, None)
        return line

    return new_line


_new_line = _line_maker()


@dataclass(slots=True)
class _Row:
    """One row that parsed, waiting for the rest of its transaction.

    ``item`` has the row's quantity, price and total made positive; the
    transaction decides later whether they were a sale's or a return's.
    """

    line: int
    raw: list[str]
    transaction_id: str
    occurred_at: datetime
    shared: tuple[str | None, ...]
    item: Line
    is_negative: bool
    role: LineRole


def read_csv(path: str | Path, mapping: Mapping) -> Iterator[Event | RowError]:
    """Yield an event per good transaction and a ``RowError`` per rejected row.

    Every rejected row is a :class:`RejectedRow` that keeps the row and header,
    ready for a :class:`RejectsWriter`. Raises ``InputError``, naming the
    file, if it cannot be opened, if its header cannot be read or lacks a
    column that the mapping names.
    """
    name = str(path)
    with (
        open_binary(path) as file,
        closing(TextLines(file, mapping.encoding, name)) as lines,
    ):
        rows = _Rows(lines, mapping.delimiter, mapping.multiline_fields)
        records = iter(rows)
        header = _header(records, lines)
        if header is None:
            return
        parser = _RowParser(mapping, header, name)
        rows.width = parser.width
        scattered = _scattered(path, mapping, parser)
        yield from _Assembler(mapping, parser, scattered).run(records, lines)


class _Broken(str):
    """Why a row is broken, with the text of its first line as it was read."""

    text: str


Record = tuple[int, int, list[str], _Broken | None]


def _header(records: Iterator[Record], lines: TextLines) -> list[str] | None:
    first = next(records, None)
    if first is None:
        return None
    _, _, header, broken = first
    if broken is not None:
        raise InputError([(lines.name, f"line 1: {broken}")])
    if lines.bad:
        number, reason = lines.bad[0]
        raise InputError([(lines.name, f"line {number}: {reason}")])
    return [name.strip() for name in header]


def _scattered(
    path: str | Path, mapping: Mapping, parser: _RowParser
) -> dict[str, int]:
    """Read the file once for its transaction ids alone.

    Give each transaction whose lines are not all together the number of its
    last line, where the second pass can make its event.
    """
    last_lines: dict[str, int] = {}
    scattered: set[str] = set()
    current: str | None = None
    transaction_id = parser.transaction_id
    with (
        open_binary(path) as file,
        closing(TextLines(file, mapping.encoding, str(path))) as lines,
    ):
        rows = _Rows(lines, mapping.delimiter, mapping.multiline_fields)
        rows.width = parser.width
        records = iter(rows)
        next(records, None)  # the header
        for line, _, fields, _ in records:
            txn_id = transaction_id(fields)
            if txn_id is None:
                continue  # a blank line or a row without an id joins no group
            if txn_id != current:
                if txn_id in last_lines:
                    scattered.add(txn_id)
                current = txn_id
            last_lines[txn_id] = line
    return {txn_id: last_lines[txn_id] for txn_id in scattered}


class _RunawayQuote(Exception):
    """A quoted field ran on past the lines any row takes."""


class _HeldLines:
    """Hand decoded lines to the csv reader, holding those of the row it reads.

    When a row goes wrong across lines, the held lines are taken back: the
    first is rejected and the rest are handed out again.
    """

    __slots__ = ("again", "held", "source")

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.held: list[str] = []
        self.again: deque[str] = deque()

    def __iter__(self) -> _HeldLines:
        return self

    def __next__(self) -> str:
        held = self.held
        if len(held) >= _MAX_ROW_LINES:
            raise _RunawayQuote
        text = self.again.popleft() if self.again else next(self.source)
        held.append(text)
        return text


class _Rows:
    """Split a file into rows: (first line, line after it, fields, why broken).

    A row that the csv module refuses, or that runs over several lines to
    the wrong number of fields, or over more than :data:`_MAX_ROW_LINES`
    lines, is broken: its first line comes out alone, with the reason, and
    splitting starts again on the line after it. ``width`` is the header's
    number of fields, once it is known.
    """

    def __init__(
        self, lines: Iterable[str], delimiter: str, multiline: bool = False
    ) -> None:
        self.lines = lines
        self.delimiter = delimiter
        self.multiline = multiline
        self.width: int | None = None

    def __iter__(self) -> Iterator[Record]:
        source = _HeldLines(iter(self.lines))
        held = source.held
        base = 0  # the number of the line before the one the reader starts on
        while True:
            reader = csv.reader(source, delimiter=self.delimiter, strict=True)
            end = base + 1
            try:
                for fields in reader:
                    start, end = end, base + reader.line_num + 1
                    width = self.width
                    if end - start > 1 and width is not None:
                        if not self.multiline:
                            reason = (
                                f"opens a quote that runs on to line {end - 1}: a "
                                "quote that is never closed? (if fields may hold "
                                "line breaks, say `multiline_fields: true` in the "
                                "mapping)"
                            )
                            break
                        if len(fields) != width:
                            reason = (
                                f"runs over lines {start}-{end - 1} to {len(fields)} "
                                f"fields, not {width}: a quote that is never closed?"
                            )
                            break
                        if self._swallows_rows(fields, width):
                            reason = (
                                f"runs over lines {start}-{end - 1} with a field "
                                "that holds other fields' delimiters: a quote that "
                                "is never closed?"
                            )
                            break
                    held.clear()
                    yield start, end, fields, None
                else:
                    return
            except csv.Error as exc:
                start, reason = end, self._describe(exc)
                if len(held) > 1 and "never closes" not in reason:
                    last = start + len(held) - 1
                    reason = (
                        f"opens a quote that runs on to line {last}, where {reason}"
                    )
            except _RunawayQuote:
                start = end
                reason = (
                    f"opens a quote that is not closed within {_MAX_ROW_LINES} lines"
                )
            first, rest = held[0], held[1:]
            held.clear()
            source.again.extendleft(reversed(rest))
            base = start
            broken = _Broken(reason)
            broken.text = first.rstrip("\r\n")
            yield start, start + 1, self._fields(first), broken

    def _swallows_rows(self, fields: list[str], width: int) -> bool:
        """Whether a field that runs over lines holds what other fields should.

        A stray quote that a later quote closes can leave the row its right
        number of fields, with whole lines inside one field; only the
        delimiters in that field show it. It is broken when the field's own
        first line holds as many delimiters as there are fields after it (it
        swallowed the rest of its row), or a later line holds as many as a
        whole row (it swallowed a row). A description may hold a line break,
        but hardly that many delimiters.
        """
        delimiter = self.delimiter
        for index, field in enumerate(fields):
            if "\n" not in field and "\r" not in field:
                continue
            first, *later = field.splitlines()
            after = width - index - 1
            if after and first.count(delimiter) >= after:
                return True
            if any(part.count(delimiter) >= width - 1 for part in later):
                return True
        return False

    def _describe(self, exc: csv.Error) -> str:
        reason = str(exc)
        if "field limit" in reason:
            return (
                f"a field is longer than {csv.field_size_limit():,} characters, "
                "more than any till writes"
            )
        if "expected after" in reason:
            return (
                "a quoted field is followed by more text before the next "
                f"{self.delimiter!r}: a stray quote?"
            )
        if "unexpected end of data" in reason:
            return "opens a quote that the file never closes"
        return reason

    def _fields(self, text: str) -> list[str]:
        """Split a broken row's first line as well as it can be split.

        When the csv module cannot give it the header's width, the line is
        split at every delimiter with quotes dropped: its transaction id is
        then most likely right, so the rest of its transaction is held back
        with it.
        """
        text = text.rstrip("\r\n")
        try:
            fields = next(csv.reader([text], delimiter=self.delimiter), [])
        except csv.Error:
            fields = []
        if self.width is None or len(fields) == self.width:
            return fields
        return [part.replace('"', "") for part in text.split(self.delimiter)]


class _RowParser:
    """Turn the fields of one row into a :class:`_Row` or a list of problems.

    Rows of one transaction repeat the time and the customer, so both are
    parsed once and remembered: this is what makes the reader fast.
    """

    def __init__(self, mapping: Mapping, header: list[str], name: str) -> None:
        self.mapping = mapping
        self.header = header
        self.width = len(header)
        self._is_rejects_file = tuple(header[: len(REJECT_COLUMNS)]) == REJECT_COLUMNS
        self._index = {column: i for i, column in reversed(list(enumerate(header)))}
        self._check_header(name)

        cols = mapping.line
        self.txn_column = mapping.transaction_id
        self.txn_at = self._index[mapping.transaction_id]
        self.time_at = self._index[mapping.time.column]
        core = (
            *(self.txn_column, mapping.time.column, cols.sku),
            *(cols.description or cols.sku, cols.quantity, cols.unit_price),
        )
        self._core = itemgetter(*(self._index[column] for column in core))
        self._shared_columns = _shared_columns(mapping)
        self._shared_get = _getter(
            [self._index[c] for c in self._shared_columns.values() if c is not None]
        )
        self._shared_seen: dict[tuple[str, ...], tuple[str | None, ...] | Problems]
        self._shared_seen = {}
        self._is_plain = cols.total is None and cols.discount is None
        self._has_description = cols.description is not None
        self._line_id_at = self.at(cols.line_id)
        self._times: dict[str, datetime | str] = {}
        self._kinds: dict[tuple[str, str], tuple[LineRole, frozenset[str]]] = {}

    def _check_header(self, name: str) -> None:
        problems: Problems = []
        for column in dict.fromkeys(_mapped_columns(self.mapping)):
            places = [
                str(i + 1) for i, found in enumerate(self.header) if found == column
            ]
            if not places:
                missing = (
                    f"is named by the mapping but missing from the header of {name}"
                )
                problems.append((column, missing))
            elif len(places) > 1:
                problems.append(
                    (
                        column,
                        f"is in the header of {name} {len(places)} times (columns "
                        f"{', '.join(places)}): the mapping cannot tell which it means",
                    )
                )
        if problems:
            raise InputError(problems)

    def at(self, column: str | None) -> int | None:
        """Give the index of a mapped column, or None if it is not mapped."""
        return None if column is None else self._index[column]

    def transaction_id(self, fields: Sequence[str]) -> str | None:
        """Read the transaction id of a row, even a broken one, if it is there.

        Quotes are left out, and a row of the wrong width is split again at
        every delimiter (a stray quote may have joined its first fields), so
        that a row a stray quote marred is grouped, and held back, with the
        rest of its transaction.
        """
        if len(fields) != self.width:
            delimiter = self.mapping.delimiter
            fields = delimiter.join(fields).split(delimiter)
        if self.txn_at < len(fields):
            return fields[self.txn_at].replace('"', "").strip() or None
        return None

    def parse(self, fields: list[str], line: int) -> _Row | Problems:
        """Parse one row; the problems name the column and the bad value.

        This is the fast path, for a row like ones seen before: known time,
        known customer, plain numbers. Anything else takes the careful path.
        """
        if len(fields) != self.width or not self._is_plain:
            return self._parse_carefully(fields, line)
        txn_id, when, sku, description, quantity_text, price_text = self._core(fields)
        occurred_at = self._times.get(when)
        if not (_is_simple(quantity_text) and _is_simple(price_text)):
            return self._parse_carefully(fields, line)
        try:
            quantity = Decimal(quantity_text)
            unit_price = Decimal(price_text)
            amount = _exact_multiply(quantity, unit_price)
            _fits_quantity(quantity, _STEP)
            _fits_amount(unit_price, _STEP)
        except (InvalidOperation, Inexact):
            return self._parse_carefully(fields, line)
        txn_id, sku = txn_id.strip(), sku.strip()
        description = description.strip() if self._has_description else ""
        shared = self._shared_seen.get(self._shared_get(fields))
        if (
            occurred_at is None
            or occurred_at.__class__ is str
            or shared.__class__ is not tuple
            or not (txn_id and sku and amount.is_finite() and quantity)
            or '"' in txn_id
            or not -_AMOUNT_LIMIT < amount < _AMOUNT_LIMIT
            or unit_price < 0
            or self._line_id_at is not None
        ):
            return self._parse_carefully(fields, line)

        role, tags = self._kinds.get((sku, description)) or self._kind(sku, description)
        item = _new_line(sku, abs(quantity), unit_price, abs(amount), description, tags)
        when_ = cast(datetime, occurred_at)  # a str was sent the careful way
        return _Row(line, fields, txn_id, when_, shared, item, quantity < 0, role)

    def _parse_carefully(self, fields: list[str], line: int) -> _Row | Problems:
        if len(fields) != self.width:
            # A rejects file's own columns are not the till's: leave them out.
            notes = len(REJECT_COLUMNS) if self._is_rejects_file else 0
            reason = _width_reason(
                len(fields) - notes, self.width - notes, self.mapping.delimiter
            )
            return [("(row)", reason)]
        cols = self.mapping.line
        txn_id, when, sku, description, quantity_text, price_text = self._core(fields)
        problems: Problems = []
        txn_id, sku = txn_id.strip(), sku.strip()
        if not txn_id:
            problems.append((self.txn_column, "is empty"))
        elif '"' in txn_id:
            problems.append((self.txn_column, f"{txn_id!r} holds a stray quote"))
        if not sku:
            problems.append((cols.sku, "is empty"))

        occurred_at = self._times.get(when) or self._time(when)
        if isinstance(occurred_at, str):
            problems.append((self.mapping.time.column, occurred_at))
        shared = self._shared(fields, problems)
        quantity = _decimal(quantity_text, cols.quantity, problems, QUANTITY)
        unit_price = _decimal(price_text, cols.unit_price, problems, AMOUNT)
        description = description.strip() if cols.description else ""
        if problems:
            return problems

        role, tags = self._kinds.get((sku, description)) or self._kind(sku, description)
        if self._is_plain and quantity and unit_price >= 0:
            try:
                amount = _exact_multiply(quantity, unit_price)
            except Inexact:
                amount = _multiply(quantity, unit_price, cols.quantity, problems)
        else:
            amount = self._amount(fields, quantity, unit_price, role, problems)
        too_large = AMOUNT.size_problem(amount)
        if too_large is not None:
            problems.append((cols.total or cols.quantity, f"line total {too_large}"))
        if problems:
            return problems

        assert shared is not None and not isinstance(occurred_at, str)
        item = Line(
            sku, abs(quantity), abs(unit_price), abs(amount), description, tags,
            self._line_id(fields),
        )  # fmt: skip
        return _Row(line, fields, txn_id, occurred_at, shared, item, quantity < 0, role)

    def _line_id(self, fields: list[str]) -> str | None:
        at = self._line_id_at
        return None if at is None else fields[at].strip() or None

    def _amount(
        self,
        fields: list[str],
        quantity: Decimal,
        unit_price: Decimal,
        role: LineRole,
        problems: Problems,
    ) -> Decimal:
        cols = self.mapping.line
        if not quantity:
            problems.append((cols.quantity, "'0': a line must move at least one unit"))
        if unit_price < 0 and role != "discount":
            problems.append((cols.unit_price, f"'{unit_price}' is negative"))
        if cols.total is None:
            gross = _multiply(quantity, unit_price, cols.quantity, problems)
        else:
            total_text = fields[self._index[cols.total]]
            gross = _decimal(total_text, cols.total, problems, AMOUNT)
        if cols.discount is None:
            return abs(gross)

        text = fields[self._index[cols.discount]]
        discount = _decimal(text, cols.discount, problems, AMOUNT) if text else _ZERO
        discount = abs(discount)
        if discount > abs(gross):
            problems.append((cols.discount, f"'{discount}' is more than the line"))
        return abs(gross) - discount

    def _time(self, text: str) -> datetime | str:
        found = _parse_time(text.strip(), self.mapping.time)
        if len(self._times) >= _CACHE_SIZE:
            self._times.clear()
        self._times[text] = found
        return found

    def _shared(
        self, fields: list[str], problems: Problems
    ) -> tuple[str | None, ...] | None:
        raw = self._shared_get(fields)
        shared = self._shared_seen.get(raw)
        if shared is None:
            shared = _normalize_shared(self.mapping, self._shared_columns, raw)
            if len(self._shared_seen) >= _CACHE_SIZE:
                self._shared_seen.clear()
            self._shared_seen[raw] = shared
        if isinstance(shared, list):
            problems.extend(shared)
            return None
        return shared

    def _kind(self, sku: str, description: str) -> tuple[LineRole, frozenset[str]]:
        if len(self._kinds) >= _CACHE_SIZE:
            self._kinds.clear()
        kind = self._kinds[sku, description] = self.mapping.classify(sku, description)
        return kind


def _getter(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if indexes:
        only = indexes[0]
        return lambda fields: (fields[only],)
    return lambda fields: ()


def _shared_columns(mapping: Mapping) -> dict[str, str | None]:
    """Name the column of each value that the rows of a transaction share."""
    who = mapping.customer

    def column(source: ValueSource | None) -> str | None:
        return source.column if source is not None else None

    return dict(
        zip(
            _SHARED_NAMES,
            (
                *(who.customer_id, who.loyalty_id, who.email, who.phone),
                *(column(mapping.store), column(mapping.channel)),
                column(mapping.currency),
                *(mapping.returns.type_column, mapping.returns.refunds_column),
            ),
            strict=True,
        )
    )


def _normalize_shared(
    mapping: Mapping, columns: dict[str, str | None], raw: tuple[str, ...]
) -> tuple[str | None, ...] | Problems:
    texts = iter(raw)
    values = {
        name: next(texts).strip() if column is not None else None
        for name, column in columns.items()
    }
    problems: Problems = []
    guest = mapping.customer.guest_values
    for name in ("customer_id", "loyalty_id", "email", "phone"):
        if values[name] in guest:
            values[name] = None
    for name in _ID_NAMES:
        control = _control_problem(values[name] or "")
        if control is not None:
            problems.append((columns[name] or name, control))
            values[name] = None
    if values["customer_id"] is not None:
        values["customer_id"] = _customer_id(
            values["customer_id"], mapping.customer, problems
        )
    for name, source in (("store", mapping.store), ("channel", mapping.channel)):
        values[name] = values[name] or (source.constant if source else None)
    values["currency"] = _currency(values["currency"], mapping.currency, problems)
    values["refunds"] = values["refunds"] or None
    return problems or tuple(values.values())


def _customer_id(text: str, spec: CustomerSpec, problems: Problems) -> str | None:
    if not any(mark in text for mark in ".eE"):
        return text
    whole, dot, fraction = text.partition(".")
    if spec.strip_float_suffix and dot and whole.isdigit() and fraction == "0":
        return whole
    hint = "" if spec.strip_float_suffix else " or set customer.strip_float_suffix"
    reason = f"'{text}' looks like a number, not an id; export ids as text{hint}"
    problems.append((spec.customer_id or "", reason))
    return None


def _control_problem(text: str) -> str | None:
    """Name the first control character in ``text``, if it holds one.

    The reason holds the character itself; ``brief_reason`` writes it as its
    escape, as it does every control character in a reason.
    """
    found = _find_control(text)
    if found is None:
        return None
    return (
        f"'{text}' holds the control character '{found.group()}' at character "
        f"{found.start() + 1}; remove it"
    )


def _currency(text: str | None, source: ValueSource, problems: Problems) -> str:
    if text is None:
        return source.constant or ""
    code = text.upper()
    if len(code) != 3 or not code.isalpha():
        reason = (
            _control_problem(text) or f"'{text}' is not a three-letter currency code"
        )
        problems.append((source.column or "", reason))
    return code


def _parse_time(text: str, spec: TimeSpec) -> datetime | str:
    try:
        if (
            spec.format in _ISO_FORMATS
            and len(text) == 19
            and text[10] == spec.format[8]
        ):
            parsed = datetime.fromisoformat(text)  # same result, 20 times faster
        elif spec.format == "iso":
            parsed = datetime.fromisoformat(text)
        else:
            parsed = datetime.strptime(text, spec.format)
    except ValueError:
        how = "ISO 8601" if spec.format == "iso" else spec.format
        return _control_problem(text) or f"'{text}' is not a date in format {how}"
    if parsed.tzinfo is not None:
        return parsed
    try:
        return localize(parsed, spec.tzinfo)
    except ValueError as exc:
        return f"'{text}' {exc}"


def _decimal(text: str, column: str, problems: Problems, bound: Bound) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        problems.append((column, _control_problem(text) or f"'{text}' is not a number"))
        return _ZERO
    problem = bound.problem(number, text)
    if problem is None and not _is_simple(text):
        if WRITTEN_NUMBER.fullmatch(text.strip()):
            number = plain(number)
        else:
            problem = f"'{text}' {NOT_WRITTEN_AS_A_NUMBER}"
    if problem is not None:
        problems.append((column, problem))
        return _ZERO
    return number


def _mapped_columns(mapping: Mapping) -> list[str]:
    who, cols, returns = mapping.customer, mapping.line, mapping.returns
    columns = [
        mapping.transaction_id,
        mapping.time.column,
        who.customer_id,
        who.loyalty_id,
        who.email,
        who.phone,
        *(source.column for source in (mapping.store, mapping.channel) if source),
        mapping.currency.column,
        *(cols.sku, cols.description, cols.quantity, cols.unit_price),
        *(cols.total, cols.discount, cols.line_id),
        returns.type_column,
        returns.refunds_column,
    ]
    return [column for column in columns if column is not None]


def _width_reason(found: int, expected: int, delimiter: str) -> str:
    hint = f" (an unquoted {delimiter!r}?)" if found > expected else ""
    return f"has {found} fields but the header has {expected}{hint}"


def _multiply(
    quantity: Decimal, unit_price: Decimal, column: str, problems: Problems
) -> Decimal:
    try:
        return _EXACT.multiply(quantity, unit_price)
    except Inexact:
        problems.append((column, f"'{quantity}' × '{unit_price}' has too many digits"))
        return _ZERO


class _Assembler:
    """Group consecutive rows by transaction id and build events from them."""

    def __init__(
        self, mapping: Mapping, parser: _RowParser, scattered: dict[str, int]
    ) -> None:
        self.mapping = mapping
        self.parser = parser
        self.scattered = scattered
        self.parts: dict[str, list[_Row | RejectedRow]] = {}

    def run(
        self, records: Iterator[Record], lines: TextLines
    ) -> Iterator[Event | RowError]:
        """Read every row and yield events and rejected rows in file order.

        A row that holds an undecodable line is rejected, and so is a broken
        row (see :class:`_Rows`); reading goes on with the next line.
        """
        parse = self.parser.parse
        bad = lines.bad
        group: list[_Row | RejectedRow] = []
        group_id: str | None = None
        row: _Row | RejectedRow
        for line, end, fields, broken in records:
            if broken is not None or (bad and bad[0][0] < end):
                row, txn_id = self._reject_broken(line, end, fields, broken, bad)
            else:
                parsed = parse(fields, line) if fields else None
                if type(parsed) is _Row:
                    txn_id, row = parsed.transaction_id, parsed
                elif parsed is None:
                    continue  # a blank line holds nothing to import
                elif type(parsed) is list:
                    txn_id = self.parser.transaction_id(fields)
                    row = self._reject(line, fields, parsed, txn_id)
            if txn_id is None:
                yield row  # type: ignore[misc]  # only a reject has no id
                continue
            if txn_id != group_id:
                yield from self._finish(group)
                group, group_id = [], txn_id
            group.append(row)
        yield from self._finish(group)
        for parts in self.parts.values():  # only if the file changed under us
            yield from self._build(parts)

    def _reject_broken(
        self,
        line: int,
        end: int,
        fields: list[str],
        broken: _Broken | None,
        bad: deque[tuple[int, str]],
    ) -> tuple[RejectedRow, str | None]:
        problems: Problems = []
        while bad and bad[0][0] < end:
            number, reason = bad.popleft()
            where = "" if number == line else f"line {number}: "
            problems.append(("(line)", where + reason))
        if broken is not None:
            problems.append(("(row)", str(broken)))
        txn_id = self.parser.transaction_id(fields)
        row = self._reject(line, fields, problems, txn_id)
        if broken is not None:
            row.text = broken.text  # its fields are a guess: keep the line itself
        return row, txn_id

    def _reject(
        self,
        line: int,
        fields: list[str],
        problems: Problems,
        txn_id: str | None,
    ) -> RejectedRow:
        return RejectedRow(
            line,
            problems,
            raw=fields,
            header=self.parser.header,
            transaction_id=txn_id,
        )

    def _finish(self, group: list[_Row | RejectedRow]) -> Iterator[Event | RowError]:
        if not group:
            return
        txn_id = group[0].transaction_id
        assert txn_id is not None
        last_line = self.scattered.get(txn_id)
        if last_line is not None:
            parts = self.parts.setdefault(txn_id, [])
            parts.extend(group)
            if group[-1].line < last_line:
                return  # more of it comes later in the file
            group = self.parts.pop(txn_id)
        yield from self._build(group)

    def _build(self, group: list[_Row | RejectedRow]) -> Iterator[Event | RowError]:
        rows = [row for row in group if isinstance(row, _Row)]
        if len(rows) < len(group):
            yield from self._reject_siblings(group)
            return
        built = _build_event(self.mapping, rows, self.parser.time_at)
        if isinstance(built, Event):
            yield built
        else:
            yield from self._reject_all(group, built)

    def _reject_siblings(
        self, group: list[_Row | RejectedRow]
    ) -> Iterator[RejectedRow]:
        bad = [str(row.line) for row in group if isinstance(row, RejectedRow)]
        reason = (
            f"rejected with line {', '.join(bad)} of the same transaction: "
            "a transaction is imported whole or not at all"
        )
        for row in group:
            if isinstance(row, RejectedRow):
                yield row
            else:
                yield self._reject(
                    row.line, row.raw, [(self.parser.txn_column, reason)],
                    row.transaction_id,
                )  # fmt: skip

    def _reject_all(
        self, group: list[_Row | RejectedRow], problems: Problems
    ) -> Iterator[RejectedRow]:
        for row in group:
            raw = row.raw if isinstance(row, _Row) else list(row.raw)
            yield self._reject(row.line, raw, problems, row.transaction_id)


def _build_event(mapping: Mapping, rows: list[_Row], time_at: int) -> Event | Problems:
    """Make one event from the rows of a transaction, or say why not.

    ``time_at`` is the index of the time column, to quote a time as written.
    """
    first = rows[0]
    problems = _time_mismatches(mapping, rows, time_at)
    problems += _shared_mismatches(mapping, rows)
    is_return = _is_return(mapping, rows, problems)
    if problems:
        return problems

    lines = tuple(_line(row, is_return) for row in rows)
    total = sum((line.total for line in lines if EXCLUDED_TAG not in line.tags), _ZERO)
    problems = _total_problems(mapping, rows, total)
    if problems:
        return problems

    customer_id, loyalty_id, email, phone, store, channel, currency, _, refunds = (
        first.shared
    )
    return Event(
        event_id=mapping.event_id(first.transaction_id),
        type=EventType.RETURN if is_return else EventType.PURCHASE,
        occurred_at=first.occurred_at,
        total=total,
        currency=currency or "",
        lines=lines,
        identity=Identity(customer_id, loyalty_id, email, phone),
        store=store,
        channel=channel,
        source=mapping.source,
        refunds_event_id=mapping.event_id(refunds) if refunds else None,
    )


def _line(row: _Row, is_return: bool) -> Line:
    if row.role != "discount" or is_return:
        return row.item
    return replace(row.item, unit_price=-row.item.unit_price, total=-row.item.total)


def _time_mismatches(mapping: Mapping, rows: list[_Row], time_at: int) -> Problems:
    first = rows[0]
    start = first.occurred_at.astimezone(UTC)
    problems: Problems = []
    for row in rows[1:]:
        if row.occurred_at is first.occurred_at:  # parsed once, so mostly
            continue
        if abs(row.occurred_at.astimezone(UTC) - start) > _LONGEST_SALE:
            mine, theirs = row.raw[time_at].strip(), first.raw[time_at].strip()
            reason = _differs(row, first, mine, theirs) + (
                ": more than an hour apart, so two sales under one number?"
            )
            problems.append((mapping.time.column, reason))
    return problems


def _shared_mismatches(mapping: Mapping, rows: list[_Row]) -> Problems:
    first = rows[0]
    problems: Problems = []
    for row in rows[1:]:
        if row.shared == first.shared:
            continue
        columns = _shared_columns(mapping)
        for name, mine, theirs in zip(
            _SHARED_NAMES, row.shared, first.shared, strict=True
        ):
            if mine != theirs:
                reason = _differs(row, first, mine or "", theirs or "")
                problems.append((columns[name] or name, reason))
    return problems


def _differs(row: _Row, first: _Row, mine: str, theirs: str) -> str:
    return (
        f"line {row.line} has '{mine}' but line {first.line}, the first of "
        f"transaction '{first.transaction_id}', has '{theirs}'"
    )


def _is_return(mapping: Mapping, rows: list[_Row], problems: Problems) -> bool:
    rule = mapping.returns
    signed = [row for row in rows if row.role != "discount"] or rows
    negatives = sum(row.is_negative for row in signed)
    mixed = 0 < negatives < len(signed)
    txn_id = rows[0].transaction_id
    if rule.negative_quantity:
        is_return = negatives == len(signed)
    elif rule.transaction_id_prefix is not None:
        is_return = txn_id.startswith(rule.transaction_id_prefix)
    else:
        is_return = rows[0].shared[7] == rule.type_value
    column = mapping.line.quantity

    if mixed:
        problems.append((column, f"transaction '{txn_id}' mixes signs"))
    elif negatives and not is_return:
        problems.append(
            (
                column,
                f"transaction '{txn_id}' has negative quantities but no return "
                "marker: neither a sale nor a return (a stock adjustment?)",
            )
        )
    if rows[0].shared[8] and not is_return:
        problems.append(
            (mapping.returns.refunds_column or "", "names a sale but is no return")
        )
    return is_return


def _total_problems(mapping: Mapping, rows: list[_Row], total: Decimal) -> Problems:
    txn_id = rows[0].transaction_id
    too_large = AMOUNT.size_problem(total)
    if too_large is not None:
        return [(mapping.line.unit_price, f"transaction '{txn_id}' totals {too_large}")]
    if total < 0:
        return [
            (mapping.line.unit_price, f"transaction '{txn_id}' totals {total}: "
             "its discounts exceed its products"),
        ]  # fmt: skip
    if mapping.reject_unpriced and all(not row.item.unit_price for row in rows):
        return [
            (mapping.line.unit_price, f"transaction '{txn_id}' has no line with "
             "a price, and the mapping rejects those (reject_unpriced)"),
        ]  # fmt: skip
    return []
