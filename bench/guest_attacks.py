"""The metadata process (IMDS and the wireserver) under a hostile guest's requests, now and at a baseline commit.

    .venv/bin/python bench/guest_attacks.py [--baseline a80fc2c] [--body-mb 300]

For each code tree (this one, and the baseline's checked out with `git worktree` into a temporary folder),
starts the metadata process in a network namespace of its own (nothing listens outside it) and, from a client
in the same namespace, sends:
  - a health POST with `Content-Length: -1` followed by --body-mb MB of body (the client stops at the first
    answer or after the body), then `Content-Length: abc`;
  - a burst of 50 goal-state requests;
  - 30 connections held open without a request, then one more request;
  - an extension status nested 20,000 deep.
Prints the process's RSS before and at its peak during the oversized body, what each attack was answered,
and the ratios. Everything it made (namespace, processes, worktree) is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = 8080
ADDR = "127.0.0.1"
CLIENT = r"""
import json, socket, sys, threading, time
addr, port, test = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def conn():
    return socket.create_connection((addr, port), timeout=30)

def status_of(s):
    try:
        return s.recv(4096).split(b"\r\n")[0].decode() or "(closed)"
    except OSError as e:
        return f"({type(e).__name__})"

def exchange(head, body_bytes=0):
    s = conn(); got = []
    t = threading.Thread(target=lambda: got.append(status_of(s))); t.start()
    s.sendall(head); chunk = b"x" * (1 << 20); left = body_bytes
    try:
        while left > 0 and not got:
            n = min(left, len(chunk)); s.sendall(chunk[:n]); left -= n
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    t.join(60); s.close()
    return got[0] if got else "(no answer)"

def post(length, path="/machine?comp=health"):
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nx-ms-version: 2012-11-30\r\nContent-Length: {length}\r\n\r\n".encode()

out = {}
if test == "body":
    out["minus_one"] = exchange(post("-1"), int(sys.argv[4]) << 20)
    out["abc"] = exchange(post("abc"))
elif test == "burst":
    codes = [exchange(b"GET /machine?comp=goalstate HTTP/1.1\r\nHost: x\r\nx-ms-version: 2012-11-30\r\n\r\n")
             for _ in range(50)]
    out["goalstate_200_of_50"] = sum(" 200 " in c for c in codes)
elif test == "hold":
    held = [conn() for _ in range(30)]
    t0 = time.monotonic()
    out["request_while_30_held"] = exchange(b"GET /machine?comp=goalstate HTTP/1.1\r\nHost: x\r\nx-ms-version: 2012-11-30\r\n\r\n")
    out["seconds"] = round(time.monotonic() - t0, 3)
    for h in held:
        h.close()
elif test == "deep":
    body = ("[" * 20000 + "]" * 20000).encode()
    out["deep_status"] = exchange(post(len(body), "/machine?comp=status&extension=CustomScriptExtension") + body)
print(json.dumps(out))
"""


def rss_kib(pid: int) -> int:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_tree(tree: Path, ns: str, body_mb: int) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="fabriclab-bench-md-"))
    doc = {"incarnation": 1, "compute": {"vmId": "bench", "name": "bench"}, "network": {},
           "extensions": [{"name": "CustomScriptExtension", "handler": "Microsoft.Compute.CustomScriptExtension",
                           "version": "1.8", "seq": 0, "timeoutSeconds": 300, "settings": {}}]}
    (folder / "metadata.json").write_text(json.dumps({ADDR: doc}))
    # the tree's nodeagent package is its node-agent folder: give it that name through a link
    link_root = folder / "pkgs"
    link_root.mkdir()
    (link_root / "nodeagent").symlink_to(tree / "node-agent")
    env = {**os.environ, "PYTHONPATH": f"{link_root}:{tree}"}
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "nodeagent.netsvc.metadata",
                             "--folder", str(folder), "--pid-file", str(folder / "pid"), "--port", str(PORT)],
                            env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=open(folder / "log", "wb"))
    try:
        deadline = time.monotonic() + 10
        while not (folder / "pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        result: dict[str, object] = {"rss_idle_mib": round(rss_kib(proc.pid) / 1024, 1)}
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(proc.pid))
                time.sleep(0.02)
        sampler = threading.Thread(target=sample)
        sampler.start()
        for test in ("body", "burst", "hold", "deep"):
            r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, ADDR, str(PORT), test,
                                str(body_mb)], capture_output=True, text=True, timeout=300)
            result.update(json.loads(r.stdout or "{}") if r.returncode == 0 else {test: r.stderr[-200:]})
            if test == "body":
                result["rss_peak_mib"] = round(peak[0] / 1024, 1)
        stop.set()
        sampler.join()
        result["alive"] = proc.poll() is None
        log = (folder / "log").read_text(errors="replace")
        result["tracebacks_in_log"] = log.count("Traceback")
        return result
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["rm", "-rf", str(folder)])


def number(row: dict[str, object], key: str) -> float:
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default="a80fc2c", help="a commit to compare with (default: before issue 9)")
    ap.add_argument("--body-mb", type=int, default=300)
    args = ap.parse_args()
    ns = f"fabriclab-bench-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="fabriclab-bench-tree-"))
    base = work / "baseline"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.baseline],
                       check=True)
        rows = {f"baseline {args.baseline}": run_tree(base, ns, args.body_mb), "this tree": run_tree(ROOT, ns,
                                                                                                    args.body_mb)}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
        subprocess.run(["rm", "-rf", str(work)])
        subprocess.run(["ip", "netns", "del", ns])
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    width = max(len(k) for k in keys)
    print(f"{'':{width}}  " + "  ".join(f"{name:>34}" for name in rows))
    for k in keys:
        print(f"{k:{width}}  " + "  ".join(f"{str(r.get(k, '-')):>34}" for r in rows.values()))
    b, n = rows[f"baseline {args.baseline}"], rows["this tree"]
    bp, np_ = number(b, "rss_peak_mib"), number(n, "rss_peak_mib")
    if np_:
        print(f"\nRSS peak under a {args.body_mb} MB body with Content-Length -1: baseline/this = {bp / np_:.1f}")


if __name__ == "__main__":
    main()
