"""Import rewards a previous system issued (and maybe saw redeemed).

A small mapping file names the CSV's columns::

    columns:
      id: RewardId            # the old system's id: importing twice is harmless
      customer: CustomerID    # the POS customer id tillsight already knows
      kind: Type
      code: Code              # kept, so tills can still redeem it
      campaign: Campaign      # optional, default: the kind's campaign
      value: Value            # optional, default: the kind's value
      store: Store            # optional
      stage: Stage            # optional: the stage at issue, if the old system knew
      issued_at: IssuedAt
      expires_at: ExpiresAt   # optional, default: issued_at + the kind's valid_days
      redeemed_at: RedeemedAt # optional, empty when not redeemed
      basket: BasketTotal     # optional: the redeeming basket's total

Times without an offset are read in the programme's zone. A row that cannot be
used is reported with its line number, column and reason, and kept as it was
read (a ``RejectedRow``) so that the command line can write it to a rejects
file to fix and import again; the rest go in.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, select

from tillsight.core.programme import Programme
from tillsight.errors import ConfigError, RowError
from tillsight.ingest.canonical import localize
from tillsight.ingest.rejects import RejectedRow
from tillsight.loyalty import codes
from tillsight.loyalty.rewards import insert_rewards, known_issue_keys
from tillsight.store import schema

REQUIRED = ("id", "customer", "kind", "issued_at")
OPTIONAL = (
    "code",
    "campaign",
    "value",
    "store",
    "stage",
    "expires_at",
    "redeemed_at",
    "basket",
)


@dataclass(slots=True)
class ImportSummary:
    """What an import did: rows read, imported, already there and rejected."""

    read: int = 0
    imported: int = 0
    already_there: int = 0
    redeemed: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


def load_reward_mapping(path: Path) -> dict[str, str]:
    """Read the mapping file: which CSV column holds each field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the mapping: {exc}") from exc
    columns = data.get("columns") if isinstance(data, dict) else None
    if not isinstance(columns, dict):
        raise ConfigError(f"{path}: needs a 'columns:' section naming CSV columns")
    missing = [name for name in REQUIRED if name not in columns]
    unknown = [name for name in columns if name not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise ConfigError(
            f"{path}: columns: missing {missing or 'nothing'}, "
            f"unknown {unknown or 'nothing'} (fields: {REQUIRED + OPTIONAL})"
        )
    return {str(key): str(value) for key, value in columns.items()}


def import_rewards(
    conn: Connection,
    programme: Programme,
    path: Path,
    mapping: dict[str, str],
    recorded_at: datetime,
) -> ImportSummary:
    """Import every usable row of ``path`` in the caller's transaction."""
    summary = ImportSummary()
    rows: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for line, values in enumerate(reader, start=2):
            if not values:
                continue
            summary.read += 1
            raw = dict(zip(header, values, strict=False))
            try:
                if len(values) > len(header):
                    found = f"has {len(values)} fields but the header has {len(header)}"
                    raise RowError(line, [("(row)", found)])
                rows.append(_row(conn, programme, mapping, raw, line))
            except RowError as exc:
                rejected = RejectedRow(line, exc.errors, raw=values, header=header)
                summary.rejected.append(rejected)

    known = known_issue_keys(conn, [row["issue_key"] for row in rows])
    fresh = [row for row in rows if row["issue_key"] not in known]
    insert_rewards(conn, fresh, recorded_at)
    summary.imported = len(fresh)
    summary.already_there = len(rows) - len(fresh)
    summary.redeemed = sum(row["redeemed_at"] is not None for row in fresh)
    return summary


def _row(
    conn: Connection,
    programme: Programme,
    mapping: dict[str, str],
    raw: dict[str, str],
    line: int,
) -> dict[str, Any]:
    cell = _Cells(mapping, raw, line, programme)
    kind_name = cell.text("kind")
    kind = programme.rewards.get(kind_name)
    if kind is None:
        cell.fail("kind", f"{kind_name!r} is not a reward kind of the programme")
    assert kind is not None
    issued_at = cell.time("issued_at")
    assert issued_at is not None
    expires_at = cell.time("expires_at") or issued_at + timedelta(days=kind.valid_days)
    if expires_at <= issued_at:
        cell.fail("expires_at", "is not after issued_at")
    code = cell.optional("code")
    return {
        "issue_key": f"import:{cell.text('id')}",
        "code": codes.normalise(code) if code else None,
        "customer_key": _customer(conn, cell),
        "kind": kind_name,
        "value": cell.money("value") if cell.optional("value") else kind.value,
        "offer": kind.offer,
        "campaign": cell.optional("campaign") or kind.campaign or kind_name,
        "stage_at_issue": cell.optional("stage"),
        "store": cell.optional("store"),
        "source": "import",
        "held_out": False,
        "issued_at": issued_at,
        "expires_at": expires_at,
        "redeemed_at": cell.time("redeemed_at"),
        "redeemed_basket": cell.money("basket") if cell.optional("basket") else None,
    }


class _Cells:
    """Reads the mapped cells of one row; every failure names line and column."""

    def __init__(
        self,
        mapping: dict[str, str],
        raw: dict[str, str],
        line: int,
        programme: Programme,
    ) -> None:
        self.mapping, self.raw, self.line = mapping, raw, line
        self.zone = programme.zone

    def fail(self, name: str, reason: str) -> None:
        raise RowError(self.line, [(self.mapping.get(name, name), reason)])

    def optional(self, name: str) -> str | None:
        column = self.mapping.get(name)
        value = (self.raw.get(column) or "").strip() if column else ""
        return value or None

    def text(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            self.fail(name, "is empty")
        assert value is not None
        return value

    def time(self, name: str) -> datetime | None:
        value = self.optional(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else localize(moment, self.zone)
        except ValueError:
            self.fail(name, f"{value!r} is not an ISO 8601 time")
            raise

    def money(self, name: str) -> Decimal:
        value = self.text(name)
        try:
            return Decimal(value)
        except InvalidOperation:
            self.fail(name, f"{value!r} is not an amount")
            raise


def _customer(conn: Connection, cell: _Cells) -> str:
    reference = cell.text("customer")
    identities = schema.identities
    key = conn.execute(
        select(identities.c.customer_key).where(
            identities.c.kind.in_(("customer", "loyalty")),
            identities.c.value == reference,
        )
    ).scalar()
    if key is None:
        cell.fail("customer", f"{reference!r} is not known; replay history first")
    return str(key)
