"""The data plane keeps answering: slow or idle connections cost no thread, a head must arrive in time, and at
the connection cap the longest-waiting unfinished head makes room for a new connection."""
from __future__ import annotations

import datetime as dt
from http.client import HTTPConnection
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from fabric.hostinfo import free_port
from fabric.storage import dataplane, sas
from fabric.storage.http_server import WORKERS, BoundedHTTPServer, Limits
from tests.integration.conftest import Api
from tests.integration.storage.conftest import http, key1


def path(api: Api) -> str:
    t = sas.sign(key1(api), "blogacct", "scripts", "simple.sh", "r",
                 dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    return f"/blogacct/scripts/simple.sh?{t.query()}"


def port_of(api: Api) -> int:
    return int(api.storage.config.endpoint.rsplit(":", 1)[1])


def slow(port: int, partial: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(partial)
    return s


def get(port: int, target: str, timeout: float = 10) -> int:
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", target)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def closed_by_server(s: socket.socket, within_s: float) -> bytes | None:
    """What the server sent before closing, or None when it is still open after within_s."""
    s.settimeout(within_s)
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return data


@pytest.fixture
def small(acct: Api) -> Iterator[tuple[Api, int]]:
    """A second data plane over the same storage, with limits small enough to reach in a test."""
    srv = dataplane.serve(f"127.0.0.1:{free_port()}", acct.storage,
                          Limits(max_connections=4, header_timeout_s=1.0, idle_timeout_s=1.0))
    yield acct, srv.server_address[1]
    srv.shutdown()


def test_slow_connections_hold_no_thread_and_answers_go_on(acct: Api) -> None:
    port, target = port_of(acct), path(acct)
    before = threading.active_count()
    held = [slow(port) for _ in range(300)]
    try:
        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda _: get(port, target, timeout=5), range(40)))
        assert statuses == [200] * 40
        assert threading.active_count() - before <= WORKERS + 20 + 2     # workers + this test's clients + loop
    finally:
        for s in held:
            s.close()


def test_a_head_not_finished_in_time_is_answered_408_and_closed(small: tuple[Api, int]) -> None:
    _, port = small
    s = slow(port)
    start = time.monotonic()
    for _ in range(5):                                       # one byte every 0.3 s: never a whole head
        time.sleep(0.3)
        try:
            s.sendall(b"X")
        except OSError:
            break
    answer = closed_by_server(s, within_s=3)
    assert answer is not None and answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - start < 3
    s.close()


def test_an_idle_kept_alive_connection_is_closed(small: tuple[Api, int]) -> None:
    api, port = small
    conn = HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path(api))
    conn.getresponse().read()
    assert closed_by_server(conn.sock, within_s=3) == b""
    conn.close()


def test_kept_alive_and_pipelined_requests_are_each_answered(small: tuple[Api, int]) -> None:
    api, port = small
    conn = HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(3):
        conn.request("GET", path(api))
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"echo hello\n")
    conn.close()
    one = f"GET {path(api)} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(one * 3 + b"GET /blogacct/scripts/simple.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3 and data.count(b"echo hello\n") == 3
    assert data.count(b"HTTP/1.1 404 ") == 1                 # the last one, anonymous on a private container


def test_at_the_cap_the_longest_waiting_head_makes_room(small: tuple[Api, int]) -> None:
    api, port = small
    held = [slow(port) for _ in range(4)]                     # the cap is 4
    time.sleep(0.1)
    try:
        assert get(port, path(api), timeout=5) == 200
        first = closed_by_server(held[0], within_s=0.5)
        assert first is not None and first.startswith(b"HTTP/1.1 503 ") and b"ServerBusy" in first
        assert all(closed_by_server(s, within_s=0.05) is None for s in held[1:])
    finally:
        for s in held:
            s.close()


def test_a_head_over_the_size_limit_is_refused(small: tuple[Api, int]) -> None:
    api, port = small
    s = slow(port, b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70000 + b"\r\n")
    answer = closed_by_server(s, within_s=3)
    assert answer is not None and answer.startswith(b"HTTP/1.1 431 ")
    s.close()
    assert http("GET", f"http://127.0.0.1:{port}{path(api)}").status == 200


def test_shutdown_closes_the_listener(acct: Api) -> None:
    srv = BoundedHTTPServer(("127.0.0.1", 0), dataplane.handler_class(acct.storage))
    srv.start()
    port = srv.server_address[1]
    assert get(port, path(acct)) == 200
    srv.shutdown()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
