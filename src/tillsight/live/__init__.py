"""The live path: HTTP requests to committed decisions, and timers on time.

Importing this package registers its tables (quarantine, API keys, webhook
deliveries) on the shared metadata; their migration is ``live_0001``.
"""

from __future__ import annotations

from tillsight.live import tables
from tillsight.live.ingest import Delivery, Ingestor, Receipt
from tillsight.live.service import LiveService
from tillsight.live.settings import Settings
from tillsight.live.store import LiveStore
from tillsight.live.timers import TimerWorker

__all__ = [
    "Delivery",
    "Ingestor",
    "LiveService",
    "LiveStore",
    "Receipt",
    "Settings",
    "TimerWorker",
    "tables",
]
