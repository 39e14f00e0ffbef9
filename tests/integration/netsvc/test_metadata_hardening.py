"""The metadata process against a hostile guest: each finding of the shared-lab review, from a namespace on the
network's bridge, against the real process the node agent runs."""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from nodeagent.netsvc.guestlimits import MAX_JSON_DEPTH, WIRESERVER_RATE, json_depth_ok
from nodeagent.netsvc.metadata import IMDS_API_VERSIONS, MAX_CONNECTIONS_PER_VM
from nodeagent.netsvc.networks import Networks
from tests.integration.netsvc.test_networks import A, B, http_from

WIRE = "10.77.0.1"
IMDS = "http://169.254.169.254/metadata/instance?api-version=2021-02-01"


def metadata_pid(networks: Networks) -> int:
    pid = networks.metadata_pid(9004)
    assert pid is not None
    return pid


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_exchange(ns: str, request: bytes, then_send: int = 0, src: str = A.ip) -> str:
    """Send `request` (and `then_send` bytes of body after it) from the guest's namespace to the wireserver over
    one TCP connection; the answer's status line ("" when the connection closes without one)."""
    code = (
        "import socket,sys,threading\n"
        f"s=socket.create_connection(({WIRE!r},80),timeout=10,source_address=({src!r},0))\n"
        "got=[]\n"
        "def read():\n"
        "    try: got.append(s.recv(4096).split(b'\\r\\n')[0].decode())\n"
        "    except OSError: pass\n"
        "t=threading.Thread(target=read); t.start()\n"
        "s.sendall(sys.stdin.buffer.read())\n"
        f"left={then_send}\n"
        "chunk=b'x'*(1<<20)\n"
        "try:\n"
        "    while left>0:\n"
        "        n=min(left,len(chunk)); s.sendall(chunk[:n]); left-=n\n"
        "except OSError: pass\n"
        "t.join(); print(got[0] if got else '')\n")
    r = subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", code], input=request, capture_output=True,
                       timeout=60)
    return r.stdout.decode().strip()


def post(length: str) -> bytes:
    return (f"POST /machine?comp=health HTTP/1.1\r\nHost: {WIRE}\r\nx-ms-version: 2012-11-30\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_content_length_is_checked_before_the_body_is_read(guest: str, networks: Networks) -> None:
    pid = metadata_pid(networks)
    before = rss_kib(pid)
    # the finding: Content-Length -1 made the process read a 300 MB body (it grew to 4.3 GiB)
    assert raw_exchange(guest, post("-1"), then_send=64 * 1024 * 1024).startswith("HTTP/1.0 400")
    assert raw_exchange(guest, post("abc")).startswith("HTTP/1.0 400")
    assert raw_exchange(guest, post(str(1 << 30)), then_send=8 * 1024 * 1024).startswith("HTTP/1.0 413")
    assert rss_kib(pid) - before < 16 * 1024, (before, rss_kib(pid))
    assert networks.health(9004, A.ip) is None                          # nothing was kept
    # and the process still answers, with no traceback in its log
    assert http_from(guest, "-H", "Metadata: true", IMDS)[0] == 200
    assert "Traceback" not in (networks.root / "9004" / "metadata.log").read_text()


def test_concurrent_health_posts_from_one_vm_all_land(guest: str, networks: Networks) -> None:
    def one(i: int) -> int:
        return http_from(guest, "-X", "POST", "-H", "x-ms-version: 2012-11-30", "--data",
                         f"<Health><State>Ready</State><AgentVersion>{i}</AgentVersion></Health>",
                         f"http://{WIRE}/machine?comp=health")[0]
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(one, range(12)))
    assert set(codes) <= {200, 429} and 200 in codes
    health = networks.health(9004, A.ip)
    assert health is not None and "<State>Ready</State>" in health["report"]
    assert "Error" not in (networks.root / "9004" / "metadata.log").read_text()
    assert not list((networks.root / "9004" / "health").glob("*.tmp"))


def test_a_deeply_nested_status_is_refused_before_it_is_parsed(guest: str, networks: Networks) -> None:
    deep = "[" * 20000 + "]" * 20000
    code, body = http_from(guest, "-X", "POST", "-H", "Content-Type: application/json", "--data", deep,
                           f"http://{WIRE}/machine?comp=status&extension=CustomScriptExtension")
    assert code == 400 and f"deeper than {MAX_JSON_DEPTH}" in body
    assert "RecursionError" not in (networks.root / "9004" / "metadata.log").read_text()
    assert json_depth_ok('{"a": [[["]]]]]]"]]]}') and not json_depth_ok("[" * (MAX_JSON_DEPTH + 1))


def test_imds_refuses_proxies_and_unknown_api_versions(guest: str) -> None:
    assert http_from(guest, "-H", "Metadata: true", "-H", "X-Forwarded-For;", IMDS)[0] == 400   # empty value
    code, body = http_from(guest, "-H", "Metadata: true", "-H", "Forwarded: for=10.77.0.5", IMDS)
    assert code == 400 and "Forwarded header is not allowed" in body
    code, body = http_from(guest, "-H", "Metadata: true",
                           "http://169.254.169.254/metadata/instance?api-version=bogus")
    assert code == 400 and json.loads(body)["newest-versions"][0] == IMDS_API_VERSIONS[-1]
    for version in ("2018-02-01", "2021-08-01"):        # what the unmodified guest agents ask for
        assert http_from(guest, "-H", "Metadata: true",
                         f"http://169.254.169.254/metadata/instance?api-version={version}")[0] == 200


def test_the_wireserver_rate_limits_a_burst_from_one_vm(guest: str) -> None:
    time.sleep(WIRESERVER_RATE.burst / WIRESERVER_RATE.per_s)         # a full bucket
    burst = ("import socket\n"
             "for _ in range(50):\n"
             f"    s = socket.create_connection(({WIRE!r}, 80), timeout=5)\n"
             "    s.sendall(b'GET /machine?comp=goalstate HTTP/1.0\\r\\nx-ms-version: 2012-11-30\\r\\n\\r\\n')\n"
             "    print(s.recv(64).split()[1].decode()); s.close()\n")
    t = time.monotonic()
    codes = subprocess.run(["ip", "netns", "exec", guest, "python3", "-c", burst], capture_output=True, text=True,
                           timeout=60).stdout.split()
    took = time.monotonic() - t
    answered = codes.count("200")
    assert len(codes) == 50 and codes.count("429") > 0
    # the bucket: its burst, and what it refilled while the 50 were sent
    assert WIRESERVER_RATE.burst - 2 <= answered <= WIRESERVER_RATE.burst + took * WIRESERVER_RATE.per_s + 1


@pytest.fixture
def two_vms(guest: str) -> Iterator[str]:
    """The guest namespace with B's address too, so that requests can come from either VM."""
    subprocess.run(["ip", "netns", "exec", guest, "ip", "addr", "add", f"{B.ip}/24", "dev", "eth0"], check=True)
    yield guest


def test_one_vm_cannot_hold_every_connection(two_vms: str, networks: Networks) -> None:
    """A's idle connections are capped; B is still answered at once."""
    holder = ("import socket,time\n"
              f"c=[socket.create_connection(({WIRE!r},80),source_address=({A.ip!r},0)) "
              f"for _ in range({MAX_CONNECTIONS_PER_VM})]\n"
              "print('held',flush=True); time.sleep(8)\n")
    p = subprocess.Popen(["ip", "netns", "exec", two_vms, "python3", "-c", holder], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "held"
        assert raw_exchange(two_vms, b"GET /machine?comp=goalstate HTTP/1.0\r\nx-ms-version: 2012-11-30\r\n\r\n"
                            ).startswith("HTTP/1.0 429")                           # A's next one: over its cap
        assert raw_exchange(two_vms, b"GET /machine?comp=goalstate HTTP/1.0\r\nx-ms-version: 2012-11-30\r\n\r\n",
                            src=B.ip).startswith("HTTP/1.0 200")                   # B: answered
    finally:
        p.kill()
        p.wait()
