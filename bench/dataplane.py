"""The blob data plane under load: the stdlib ThreadingHTTPServer (before) and the bounded server (after).

    .venv/bin/python bench/dataplane.py [--parallel 200] [--slow 1000] [--timeout 10] [--blob-kib 64]

Starts its own etcd on free loopback ports (removed at the end), a storage provider with one blob, and each
server in turn in this process on 127.0.0.1, serving the same handler (`dataplane.handler_class`). For each:
  1. `--parallel` GETs of the blob at once (a new connection each, `--timeout` s per request): answered,
     timed out, failed, p50 / p99 latency;
  2. `--slow` connections that send a request head one byte per DRIP_INTERVAL_S and never finish it, held
     while the same burst of GETs runs again; the server's thread count (threads this process started for the
     server, sampled while the connections are held) and how many slow connections the server closed.
The clients share the process (and its GIL) with the server, the same for both. Prints a table and the ratios
after/before. Every loop is bounded in count and time; the whole run takes about a minute.
"""
from __future__ import annotations

import argparse
import datetime as dt
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabric.storage import dataplane, sas  # noqa: E402
from fabric.storage.provider import StorageConfig, StorageProvider  # noqa: E402
from fabric.store import Store  # noqa: E402
from fabric.lab.etcd import Etcd  # noqa: E402

ACCOUNT, CONTAINER, BLOB = "benchblobs", "data", "blob.bin"
DRIP_INTERVAL_S = 1.0           # a slow client sends one more byte of its head this often
SLOW_CONNECT_BUDGET_S = 20.0    # opening the slow connections stops after this long
SLOW_CONNECT_TIMEOUT_S = 5.0    # one connect (a full listen backlog drops SYNs: the client retries after 1, 3 s)
SLOW_OPENERS = 50               # threads opening the slow connections
CLIENT_THREAD_PREFIX = "bench-"


@dataclass
class Burst:
    answered: int
    timed_out: int
    failed: int
    latencies: list[float]

    def quantile(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    def p99(self) -> float:
        return self.quantile(0.99)

    def pct(self, p: float) -> str:
        return f"{self.quantile(p) * 1000:.0f} ms" if self.latencies else "-"


@dataclass
class Result:
    burst: Burst
    slow_opened: int
    slow_burst: Burst
    threads: int
    slow_closed_by_server: int


def server_threads(before: set[int]) -> int:
    return sum(1 for t in threading.enumerate()
               if t.ident not in before and not t.name.startswith(CLIENT_THREAD_PREFIX))


def one_get(port: int, target: str, size: int, timeout: float) -> tuple[str, float]:
    t0 = time.monotonic()
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", target)
        r = conn.getresponse()
        body = r.read()
        ok = r.status == 200 and len(body) == size
        return ("answered" if ok else "failed"), time.monotonic() - t0
    except TimeoutError:
        return "timed out", time.monotonic() - t0
    except OSError:
        return "failed", time.monotonic() - t0
    finally:
        conn.close()


def burst(port: int, target: str, size: int, n: int, timeout: float) -> Burst:
    start = threading.Barrier(n)

    def run(_: int) -> tuple[str, float]:
        start.wait()
        return one_get(port, target, size, timeout)

    with ThreadPoolExecutor(n, thread_name_prefix=f"{CLIENT_THREAD_PREFIX}get") as pool:
        results = list(pool.map(run, range(n)))
    return Burst(answered=sum(1 for k, _ in results if k == "answered"),
                 timed_out=sum(1 for k, _ in results if k == "timed out"),
                 failed=sum(1 for k, _ in results if k == "failed"),
                 latencies=[t for k, t in results if k == "answered"])


class SlowClients:
    """`n` connections that send a request head one byte at a time and never finish it."""

    def __init__(self, port: int, n: int) -> None:
        self._stop = threading.Event()
        deadline = time.monotonic() + SLOW_CONNECT_BUDGET_S

        def open_one(_: int) -> socket.socket | None:
            if time.monotonic() > deadline:
                return None
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=SLOW_CONNECT_TIMEOUT_S)
                s.sendall(b"GET /" + ACCOUNT.encode())
                s.setblocking(False)
                return s
            except OSError:
                return None
        with ThreadPoolExecutor(SLOW_OPENERS, thread_name_prefix=f"{CLIENT_THREAD_PREFIX}open") as pool:
            self.socks = [s for s in pool.map(open_one, range(n)) if s is not None]
        self._drip = threading.Thread(target=self._dripping, name=f"{CLIENT_THREAD_PREFIX}drip", daemon=True)
        self._drip.start()

    def _dripping(self) -> None:
        while not self._stop.wait(DRIP_INTERVAL_S):
            for s in self.socks:
                try:
                    s.send(b"x")
                except OSError:            # a full buffer, or closed by the server
                    pass

    def closed_by_server(self) -> int:
        """Connections the server answered (408, 503) or closed: a head never finishes, so anything read means
        the server is done with it."""
        closed = 0
        for s in self.socks:
            try:
                s.recv(4096)
                closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def close(self) -> None:
        self._stop.set()
        self._drip.join()
        for s in self.socks:
            s.close()


def measure(start_server: Callable[[], tuple[int, Callable[[], None]]], target: str, size: int,
            args: argparse.Namespace) -> Result:
    before = {t.ident for t in threading.enumerate() if t.ident is not None}
    port, stop = start_server()
    try:
        first = burst(port, target, size, args.parallel, args.timeout)
        slow = SlowClients(port, args.slow)
        time.sleep(DRIP_INTERVAL_S)
        threads = server_threads(before)
        during = burst(port, target, size, args.parallel, args.timeout)
        threads = max(threads, server_threads(before))
        closed = slow.closed_by_server()
        slow.close()
        return Result(first, len(slow.socks), during, threads, closed)
    finally:
        stop()


def baseline(provider: StorageProvider) -> tuple[int, Callable[[], None]]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), dataplane.handler_class(provider))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True, name="baseline-dataplane").start()

    def stop() -> None:
        srv.shutdown()
        srv.server_close()
    return srv.server_address[1], stop


def bounded(provider: StorageProvider) -> tuple[int, Callable[[], None]]:
    srv = dataplane.serve("127.0.0.1:0", provider)
    return srv.server_address[1], srv.shutdown


def table(before: Result, after: Result, args: argparse.Namespace) -> None:
    def row(label: str, b: object, a: object) -> None:
        print(f"| {label:<50} | {b!s:>22} | {a!s:>22} |")

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "-"
    row("", "before: stdlib threads", "after: bounded server")
    print(f"|{'-' * 52}|{'-' * 24}|{'-' * 24}|")
    bursts = ((f"{args.parallel} parallel GETs", "burst"),
              (f"the same, while {args.slow} slow connections are held", "slow_burst"))
    for label, key in bursts:
        b, a = getattr(before, key), getattr(after, key)
        row(label, "", "")
        row(f"  answered / timed out ({args.timeout:.0f} s) / failed", f"{b.answered} / {b.timed_out} / {b.failed}",
            f"{a.answered} / {a.timed_out} / {a.failed}")
        row("  latency of the answered, p50 / p99", f"{b.pct(0.5)} / {b.pct(0.99)}", f"{a.pct(0.5)} / {a.pct(0.99)}")
    row(f"slow connections opened (of {args.slow})", before.slow_opened, after.slow_opened)
    row("  closed by the server (408 late head, 503 at cap)", before.slow_closed_by_server,
        after.slow_closed_by_server)
    row("  server threads while they are held", before.threads, after.threads)
    print()
    for label, key in bursts:
        b, a = getattr(before, key), getattr(after, key)
        print(f"after/before, {label}: answered {ratio(a.answered, b.answered)}, "
              f"p99 {ratio(a.p99(), b.p99()) if a.latencies and b.latencies else '-'}")
    print(f"after/before, server threads with the slow connections held: {ratio(after.threads, before.threads)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parallel", type=int, default=200)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=10.0, help="client timeout per GET, seconds")
    ap.add_argument("--blob-kib", type=int, default=64)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (args.slow + args.parallel) + 256            # both ends of every connection live in this process
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    with tempfile.TemporaryDirectory(prefix="fabriclab-bench-dataplane-") as tmp:
        etcd = Etcd(Path(tmp))
        etcd.start()
        store = Store(etcd.url)
        try:
            provider = StorageProvider(store, StorageConfig(Path(tmp) / "blobs", "local", "http://127.0.0.1:0"))
            acct = provider.ensure_system_account(ACCOUNT)
            provider.create_container(ACCOUNT, CONTAINER)
            size = args.blob_kib * 1024
            provider.put_blob(ACCOUNT, CONTAINER, BLOB, [bytes(size)])
            token = sas.sign(acct.key1, ACCOUNT, CONTAINER, BLOB, "r",
                             dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
            target = f"/{ACCOUNT}/{CONTAINER}/{BLOB}?{token.query()}"
            t0 = time.monotonic()
            before = measure(lambda: baseline(provider), target, size, args)
            after = measure(lambda: bounded(provider), target, size, args)
            print(f"blob {args.blob_kib} KiB; {args.parallel} clients; loopback; "
                  f"{time.monotonic() - t0:.0f} s of measuring\n")
            table(before, after, args)
        finally:
            store.close()
            etcd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
