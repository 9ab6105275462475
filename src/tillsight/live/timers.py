"""Live timers: fire every due timer on time, exactly once.

The ``timers`` table mirrors the timers armed in each customer's state. A
worker claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
service processes never take the same row; SQLite's write lock serialises
them), then takes each customer's row without waiting: a customer that an
ingest holds is skipped, because that ingest fires the due timer itself
before it applies its event. Firing goes through the core runner, so a timer
fires live exactly as it would in a replay, and the state and its decisions
are written in the same transaction that removes the timer.
"""

from __future__ import annotations

import threading

import structlog
from sqlalchemy import Connection, select

from tillsight.core.engine import Engine as RuleEngine
from tillsight.core.programme import Programme
from tillsight.core.runner import Runner
from tillsight.core.timeconv import instant_us
from tillsight.live.ingest import Clock, load_state, wall_clock
from tillsight.live.store import LiveStore
from tillsight.store import schema
from tillsight.store.event_log import customer_history
from tillsight.store.writer import save_states, write_decisions

log = structlog.get_logger("tillsight.live")


class TimerWorker:
    """Fires due timers in batches; ``run`` loops until told to stop."""

    def __init__(
        self,
        store: LiveStore,
        programme: Programme,
        *,
        clock: Clock = wall_clock,
        interval_s: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval_s = interval_s
        self.batch_size = batch_size
        self._engine = RuleEngine(programme)

    def fire_due(self) -> int:
        """Fire what is due now; return how many customers were handled."""
        return self.store.write(self._fire_due)

    def run(self, stop: threading.Event) -> None:
        """Fire due timers every ``interval_s`` until ``stop`` is set."""
        log.info("timer_worker_started", interval_s=self.interval_s)
        while not stop.is_set():
            try:
                handled = self.fire_due()
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("timer_pass_failed")
                handled = 0
            if handled < self.batch_size:
                stop.wait(self.interval_s)
        log.info("timer_worker_stopped")

    def _fire_due(self, conn: Connection) -> int:
        now = self.clock()
        keys = self._claim(conn, now)
        fired = 0
        for key in keys:
            runner = Runner(self._engine, lambda k: customer_history(conn, k))
            runner.add(load_state(conn, self._engine, key))
            decisions = runner.advance(instant_us(now))
            write_decisions(conn, decisions, now)
            save_states(conn, [runner.states[key]], now)
            fired += sum(1 for d in decisions if d.kind.value == "rule_fired")
        if fired:
            log.info("timers_fired", customers=len(keys), firings=fired)
        return len(keys)

    def _claim(self, conn: Connection, now: object) -> list[str]:
        timers = schema.timers
        query = (
            select(timers.c.customer_key)
            .where(timers.c.due_at < now)
            .order_by(timers.c.due_at)
            .limit(self.batch_size)
        )
        if self.store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        keys = list(dict.fromkeys(conn.execute(query).scalars()))
        if not self.store.is_postgres or not keys:
            return keys
        customers = schema.customers
        locked = conn.execute(
            select(customers.c.key)
            .where(customers.c.key.in_(keys))
            .with_for_update(skip_locked=True)
        ).scalars()
        return sorted(set(locked))
