"""POS webhook adapters: verify a delivery, then map it to canonical events.

The mapping functions are pure: JSON in, :class:`AdapterResult` out. The only
I/O is :class:`SquareOrdersClient`, which a caller hands to
:func:`square_to_events` as its ``fetch_order``. Signatures are checked on the
raw request bytes before the body is parsed.
"""

from __future__ import annotations

from tillsight.sources._payload import AdapterResult
from tillsight.sources.shopify import order_event_id, shopify_to_events
from tillsight.sources.signatures import verify_shopify, verify_square
from tillsight.sources.square import OrderFetcher, sale_event_id, square_to_events
from tillsight.sources.square_client import SquareOrdersClient

__all__ = [
    "AdapterResult",
    "OrderFetcher",
    "SquareOrdersClient",
    "order_event_id",
    "sale_event_id",
    "shopify_to_events",
    "square_to_events",
    "verify_shopify",
    "verify_square",
]
