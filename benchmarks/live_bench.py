"""Live ingest: events/s and latency to a committed decision, vs storing raw bytes.

Starts ``tillsight serve`` on loopback (SQLite by default, or ``--db``), then
for 1, 8 and 32 concurrent clients sends canonical purchases to
``/v1/events`` and the same bodies to ``/v1/raw-events`` (the same server
storing only the raw body), and finally paces ``/v1/events`` at a fixed rate
to check the p99 target. Run: ``python benchmarks/live_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tillsight.live.keys import Keys
from tillsight.live.store import LiveStore

SERVE = [sys.executable, "-c", "from tillsight.cli import main; main()", "serve"]


def body(n: int, customers: int) -> bytes:
    at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    return (
        f'{{"event_id":"B{n}","type":"purchase","occurred_at":"{at}",'
        f'"currency":"GBP","total":"{10 + n % 50}.00",'
        f'"customer":{{"customer_id":"C{n % customers}"}}}}'
    ).encode()


async def run(
    url: str,
    key: str,
    path: str,
    clients: int,
    total: int,
    start: int,
    rate: float | None = None,
) -> tuple[float, list[float]]:
    """Send ``total`` requests from ``clients`` tasks; return seconds, latencies."""
    latencies: list[float] = []
    counter = iter(range(start, start + total))
    began = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def client(http: httpx.AsyncClient) -> None:
        for n in counter:
            if rate is not None:
                delay = began + (n - start) / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent = time.perf_counter()
            response = await http.post(path, content=body(n, 2000), headers=headers)
            latencies.append(time.perf_counter() - sent)
            assert response.status_code in (200, 202), response.text

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return time.perf_counter() - began, latencies


def report(label: str, seconds: float, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    rate = len(ordered) / seconds
    return f"{label:<28} {rate:8.0f} ev/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="store URL [default: a fresh SQLite file]")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    url_db = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
    store = LiveStore.open(url_db)
    key = Keys(store).create("bench", ["ingest"], datetime.now(UTC))
    store.dispose()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"TILLSIGHT_RAW_ENDPOINT": "1", "TILLSIGHT_RUN_TIMERS": "0"}
    server = subprocess.Popen(
        [*SERVE, "--db", url_db, "--port", str(port), "--json-logs"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url)
        asyncio.run(_all(url, key, args.events, args.rate))
    finally:
        server.terminate()
        server.wait()


async def _all(url: str, key: str, events: int, rate: float) -> None:
    start = 0
    for clients in (1, 8, 32):
        for path in ("/v1/events", "/v1/raw-events"):
            seconds, latencies = await run(url, key, path, clients, events, start)
            start += events
            print(report(f"{path} x{clients}", seconds, latencies), flush=True)
    seconds, latencies = await run(url, key, "/v1/events", 32, events, start, rate)
    print(report(f"/v1/events paced {rate:g}/s", seconds, latencies), flush=True)


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url + "/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


if __name__ == "__main__":
    main()
