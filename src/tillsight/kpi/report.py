"""A self-contained HTML page of the redemption rate: inline SVG, no fetches.

The page holds headline figures, the rate by stage at issue, by location, by
campaign and by month of issue (to date beside matured), the control groups'
repurchase rates and the stage funnel. Everything is drawn here as SVG, so
the file can be mailed or opened offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape

from tillsight.kpi.redemption import (
    ControlRow,
    FunnelStep,
    RateRow,
    RedemptionReport,
)

_WIDTH = 560
_BAR = 22
_LABEL = 150
_COLOURS = ("#2563eb", "#93c5fd")
_STYLE = """
body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:32px;
color:#111827;background:#f9fafb}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}
.note{color:#6b7280;font-size:13px;margin:0 0 16px}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0 24px}
.tile{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;
min-width:140px}.tile b{display:block;font-size:22px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(580px,1fr));gap:16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
text{font:12px system-ui,sans-serif;fill:#374151}
"""


def render(
    report: RedemptionReport, slices: Mapping[str, Sequence[RateRow]], title: str
) -> str:
    """The whole page; ``slices`` maps a dimension to its rows."""
    cards = [
        _rate_card(f"Redemption rate by {name}", name, rows)
        for name, rows in slices.items()
    ]
    cards.append(_control_card(report.control))
    cards.append(_funnel_card(report.customers, report.funnel))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p class='note'>As of {escape(report.as_of.isoformat())}. Issued "
        "rewards exclude the held-out control group; <em>matured</em> counts only "
        "rewards whose expiry has passed.</p>"
        f"{_tiles(report.total)}<div class='grid'>{''.join(cards)}</div>"
        "</body></html>"
    )


def _tiles(total: RateRow) -> str:
    figures = [
        ("Rewards issued", f"{total.issued:,}"),
        ("Redeemed", f"{total.redeemed:,}"),
        ("Rate to date", _percent(total.rate)),
        ("Rate, matured", _percent(total.matured_rate)),
        ("Median days to redeem", _plain(total.median_days)),
        ("Revenue of redeeming baskets", f"{total.revenue:,.2f}"),
    ]
    tiles = "".join(
        f"<div class='tile'>{escape(label)}<b>{escape(value)}</b></div>"
        for label, value in figures
    )
    return f"<div class='tiles'>{tiles}</div>"


def _rate_card(title: str, dimension: str, rows: Sequence[RateRow]) -> str:
    bars = [
        (
            row.group.get(dimension, ""),
            [row.rate, row.matured_rate],
            f"{row.redeemed}/{row.issued}",
        )
        for row in rows
    ]
    legend = _legend(("to date", "matured"))
    return _card(title, legend + _bars(bars, Decimal(1)), empty=not rows)


def _control_card(rows: Sequence[ControlRow]) -> str:
    bars = [
        (
            row.campaign,
            [row.rewarded_rate, row.held_out_rate],
            f"lift {_points(row.lift)}",
        )
        for row in rows
    ]
    legend = _legend(("rewarded bought again", "held out bought again"))
    return _card(
        "Control groups: repurchase within the reward's validity",
        legend + _bars(bars, Decimal(1)),
        empty=not rows,
    )


def _funnel_card(customers: int, steps: Sequence[FunnelStep]) -> str:
    bars = [("customers", [Decimal(customers)], f"{customers:,}")]
    bars += [
        (
            step.stage,
            [Decimal(step.reached)],
            f"{step.reached:,} ({step.current:,} now)",
        )
        for step in steps
    ]
    top = Decimal(max(customers, 1))
    return _card(
        "Stage funnel: customers who ever reached each stage",
        _bars(bars, top, as_count=True),
        empty=not customers,
    )


def _bars(
    bars: Sequence[tuple[str, Sequence[Decimal | None], str]],
    top: Decimal,
    *,
    as_count: bool = False,
) -> str:
    """Horizontal bars, one group per label, one bar per series."""
    per_group = max((len(values) for _, values, _ in bars), default=1)
    step = _BAR * per_group + 10
    height = step * len(bars) + 6
    span = _WIDTH - _LABEL - 160  # room for the value and the note
    parts: list[str] = []
    for index, (label, values, note) in enumerate(bars):
        y = index * step + 4
        parts.append(_text(4, y + _BAR * per_group / 2 + 4, label[:22]))
        for series, value in enumerate(values):
            width = 0 if value is None or not top else float(value / top) * span
            colour = _COLOURS[series % len(_COLOURS)]
            bar_y = y + series * _BAR
            parts.append(
                f"<rect x='{_LABEL}' y='{bar_y}' width='{width:.1f}' "
                f"height='{_BAR - 4}' rx='3' fill='{colour}'/>"
            )
            if not as_count:  # a count is in the note already
                shown = _percent(value)
                parts.append(_text(_LABEL + width + 6, bar_y + _BAR - 9, shown))
        parts.append(_text(_WIDTH - 100, y + 14, note))
    return (
        f"<svg role='img' width='{_WIDTH}' height='{height}' "
        f"viewBox='0 0 {_WIDTH} {height}' xmlns='http://www.w3.org/2000/svg'>"
        f"{''.join(parts)}</svg>"
    )


def _card(title: str, body: str, *, empty: bool) -> str:
    content = "<p class='note'>Nothing to show yet.</p>" if empty else body
    return f"<div class='card'><h2>{escape(title)}</h2>{content}</div>"


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f"<span style='background:{_COLOURS[n]}'></span>{escape(name)}"
        for n, name in enumerate(names)
    )
    return f"<p class='note legend'>{items}</p>"


def _text(x: float, y: float, content: str) -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}'>{escape(content)}</text>"


def _percent(value: Decimal | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _points(value: Decimal | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} pts"


def _plain(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:,}"
