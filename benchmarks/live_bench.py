"""Live ingest: events/s and latency to a committed decision, vs storing raw bytes.

Starts ``tillsight serve`` on loopback (a fresh SQLite file by default, or
``--db``) and measures, side by side on the same server:

- closed loop: 1, 8 and 32 connections each sending as fast as answers come
  back, to ``/v1/events`` (decide and commit) and ``/v1/raw-events`` (commit
  the body only). With ``wrk`` on the PATH this uses ``wrk -t1`` and
  ``benchmarks/live_events.lua`` (C, one thread, so the load generator takes
  little of the server's CPU); without it, a Python client stands in and the
  report says so.
- open loop: ``/v1/events`` paced at ``--rate`` requests/s by a small asyncio
  HTTP/1.1 client over a pool of keep-alive connections. Each request's
  latency runs from when it was *due* to be sent to when its answer arrived,
  so a server that falls behind cannot hide it (no coordinated omission).

Every request carries its own event id; purchases are spread over
``--customers`` customers, each one's in the order they happened. Every run
is bounded in time. Run: ``python benchmarks/live_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tillsight.live.keys import Keys
from tillsight.live.store import LiveStore

SERVE = [sys.executable, "-c", "from tillsight.cli import main; main()", "serve"]
LUA = Path(__file__).with_name("live_events.lua")
_RESULT = re.compile(r"RESULT (.*)")


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: how many answers, how long, latency, server CPU."""

    label: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    server_cpu_s: float | None

    def line(self) -> str:
        rate = self.requests / self.seconds
        cpu = ""
        if self.server_cpu_s is not None and self.requests:
            cpu = f"   server CPU {self.server_cpu_s / self.requests * 1000:5.2f} ms/ev"
        failed = f"   FAILED {self.failures}" if self.failures else ""
        return (
            f"{self.label:<30} {rate:7.0f} ev/s   p50 {self.p50_ms:7.1f} ms"
            f"   p99 {self.p99_ms:7.1f} ms{cpu}{failed}"
        )


def canonical(prefix: str, n: int, customers: int, start: datetime) -> bytes:
    """The n-th purchase: the same shape ``live_events.lua`` sends."""
    at = (start + timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z")
    return (
        f'{{"event_id":"{prefix}-{n:09d}","type":"purchase","occurred_at":"{at}",'
        f'"currency":"GBP","total":"{10 + n % 50}.00",'
        f'"customer":{{"customer_id":"C{n % customers}"}}}}'
    ).encode()


class Server:
    """``tillsight serve`` in a child process, with its CPU time readable."""

    def __init__(self, db_url: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"TILLSIGHT_RAW_ENDPOINT": "1", "TILLSIGHT_RUN_TIMERS": "0"}
        self.process = subprocess.Popen(
            [*SERVE, "--db", db_url, "--port", str(self.port), "--json-logs"],
            env=env,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        for _ in range(300):
            try:
                httpx.get(self.url + "/openapi.json", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit(f"{self.url} did not start")

    def cpu_s(self) -> float | None:
        """User plus system time of the server so far (Linux only)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().split(")")[1]
        except OSError:
            return None
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def wrk_run(
    server: Server, key: str, path: str, connections: int, seconds: int, args: Any
) -> Run:
    """Drive ``path`` with wrk for ``seconds``; parse the Lua script's summary."""
    env = os.environ | {
        "LIVE_KEY": key,
        "LIVE_PREFIX": f"W{connections}{path.rsplit('/', 1)[-1][:3]}",
        "LIVE_CUSTOMERS": str(args.customers),
    }
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        server.url + path,
    ]
    cpu_before = server.cpu_s()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60
    )
    cpu = _delta(cpu_before, server.cpu_s())
    found = _RESULT.search(done.stdout)
    if found is None:
        raise SystemExit(f"wrk gave no result:\n{done.stdout}\n{done.stderr}")
    fields = dict(item.split("=") for item in found.group(1).split())
    return Run(
        f"{path} x{connections}",
        int(fields["requests"]),
        float(fields["seconds"]),
        float(fields["p50_ms"]),
        float(fields["p99_ms"]),
        int(fields["errors"]) + int(fields["non2xx"]),
        cpu,
    )


async def paced(
    server: Server,
    key: str,
    path: str,
    rate: float,
    seconds: float,
    customers: int,
    *,
    prefix: str = "P",
    connections: int = 64,
    label: str | None = None,
    timeline: bool = False,
) -> Run:
    """Send ``rate`` requests/s for ``seconds``, open loop; latency from due time.

    With ``rate`` 0 each connection sends as fast as answers come back (a
    closed loop, for when wrk is missing).
    """
    start = datetime.now(UTC) - timedelta(hours=1)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    ).encode()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    pool = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", server.port))
    latencies: list[float] = []
    failures = 0

    async def one(n: int, due: float) -> None:
        nonlocal failures
        reader, writer = await pool.get()
        body = canonical(prefix, n, customers, start)
        writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status = await _answer(reader)
        latencies.append(time.perf_counter() - due)
        by_second.setdefault(int(due - began), []).append(latencies[-1])
        failures += status not in (200, 202)
        pool.put_nowait((reader, writer))

    by_second: dict[int, list[float]] = {}
    # The client's own garbage collection would show up as server latency.
    gc.disable()
    cpu_before = server.cpu_s()
    began = time.perf_counter()
    if rate > 0:
        tasks = []
        for n in range(int(rate * seconds)):
            due = began + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, due)))
        _, late = await asyncio.wait(tasks, timeout=seconds + 30)
        for task in late:
            task.cancel()
        # Requests still unanswered 30 s after the last was due count as failed.
        failures += len(late)
    else:
        counter = iter(range(10**9))

        async def loop() -> None:
            while time.perf_counter() - began < seconds:
                await one(next(counter), time.perf_counter())

        await asyncio.gather(*(loop() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    cpu = _delta(cpu_before, server.cpu_s())
    gc.enable()
    while not pool.empty():
        pool.get_nowait()[1].close()

    if timeline:
        for second, values in sorted(by_second.items()):
            values.sort()
            p50_ms = values[len(values) // 2] * 1000
            print(
                f"  second {second:3d}: {len(values):4d} answers, "
                f"p50 {p50_ms:7.1f} ms, max {values[-1] * 1000:7.1f} ms"
            )
    ordered = sorted(latencies)
    return Run(
        label or f"{path} paced {rate:g}/s",
        len(ordered),
        elapsed,
        ordered[len(ordered) // 2] * 1000,
        ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
        failures,
        cpu,
    )


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    await reader.readexactly(int(length.group(1)) if length else 0)
    return status


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = "Python client (wrk absent)"
    if shutil.which("wrk"):
        tool = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        wrk_version = tool.stdout.split("[")[0].strip() or "wrk"
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; load: {wrk_version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="store URL [default: a fresh SQLite file]")
    parser.add_argument("--seconds", type=int, default=15, help="per closed run")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument(
        "--paced-only", action="store_true", help="skip the closed-loop runs"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print the paced run's latency second by second",
    )
    parser.add_argument(
        "--python-client",
        action="store_true",
        help="use the Python client for closed loops even when wrk is present",
    )
    args = parser.parse_args()

    folder = tempfile.mkdtemp()
    db_url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
    store = LiveStore.open(db_url)
    key = Keys(store).create("bench", ["ingest"], datetime.now(UTC))
    store.dispose()
    print(machine(), flush=True)

    server = Server(db_url)
    try:
        server.wait_ready()
        if not args.paced_only:
            _closed_runs(server, key, args)
        run = asyncio.run(
            paced(
                server,
                key,
                "/v1/events",
                args.rate,
                args.paced_seconds,
                args.customers,
                timeline=args.timeline,
            )
        )
        print(run.line(), flush=True)
    finally:
        server.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"load generator (Python) CPU: {usage.ru_utime + usage.ru_stime:.1f} s")


def _closed_runs(server: Server, key: str, args: Any) -> None:
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    if not use_wrk:
        print("wrk not found: closed loops use the Python client", flush=True)
    # A short first run warms the server (imports, caches, the SQLite file).
    if use_wrk:
        wrk_run(server, key, "/v1/raw-events", 1, 2, args)
    for connections in (1, 8, 32):
        for path in ("/v1/events", "/v1/raw-events"):
            if use_wrk:
                run = wrk_run(server, key, path, connections, args.seconds, args)
            else:
                run = asyncio.run(
                    paced(
                        server,
                        key,
                        path,
                        0,
                        args.seconds,
                        args.customers,
                        prefix=f"Q{connections}{path[4:7]}",
                        connections=connections,
                        label=f"{path} x{connections} (python)",
                    )
                )
            print(run.line(), flush=True)


if __name__ == "__main__":
    main()
