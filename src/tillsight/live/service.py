"""The live service put together: store, programme, ingest, timers, keys."""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from tillsight.core.programme import Programme
from tillsight.live.ingest import Clock, Ingestor, wall_clock
from tillsight.live.keys import Keys
from tillsight.live.quarantine import Quarantine
from tillsight.live.receiver import Receiver
from tillsight.live.settings import Settings
from tillsight.live.store import LiveStore
from tillsight.live.timers import TimerWorker
from tillsight.programme_file import load_programme
from tillsight.sources import SquareOrdersClient

log = structlog.get_logger("tillsight.live")


class LiveService:
    """Everything a running ``tillsight serve`` holds, built once."""

    def __init__(
        self,
        store: LiveStore,
        programme: Programme,
        settings: Settings,
        *,
        clock: Clock = wall_clock,
    ) -> None:
        self.store = store
        self.programme = programme
        self.settings = settings
        self.ingestor = Ingestor(store, programme, region=settings.region, clock=clock)
        self.quarantine = Quarantine(store)
        self.keys = Keys(store)
        self._square: SquareOrdersClient | None = None
        if settings.square_access_token:
            self._square = SquareOrdersClient(
                settings.square_base_url, settings.square_access_token
            )
        fetch = self._square.retrieve_order if self._square else None
        self.receiver = Receiver(self.ingestor, self.quarantine, settings, fetch)
        self.timers = TimerWorker(
            store, programme, clock=clock, interval_s=settings.timer_interval_s
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def open(
        cls,
        database_url: str | None,
        programme_path: Path | None,
        settings: Settings | None = None,
        *,
        must_exist: bool = False,
    ) -> LiveService:
        """Connect to the store, load the programme, read settings.

        With ``must_exist``, a SQLite file that is not there is a ``StoreError``.
        """
        return cls(
            LiveStore.open(database_url, must_exist=must_exist),
            load_programme(programme_path),
            settings or Settings.from_env(),
        )

    def start_timers(self) -> None:
        """Fire due timers in a background thread until ``close``."""
        if self._thread is not None or not self.settings.run_timers:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.timers.run, args=(self._stop,), name="timers", daemon=True
        )
        self._thread.start()

    def stop_timers(self) -> None:
        """Stop the timer thread, letting a pass in progress finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def close(self) -> None:
        """Stop the timer thread and release connections."""
        self.stop_timers()
        if self._square is not None:
            self._square.close()
        self.store.dispose()
