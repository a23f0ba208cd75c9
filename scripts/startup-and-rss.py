#!/usr/bin/env python3
"""Time from process start to the first 200 from /readyz, and idle RSS, for a Portico binary.

Usage: scripts/startup-and-rss.py [path/to/portico] [runs]

Runs in a scratch directory with zero configuration (SQLite, generated master key) on a free
port. The first run creates the database and keys; the figures are from the runs after it, with
migrations already applied.
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/portico")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url):
    try:
        with urllib.request.urlopen(url, timeout=0.2) as r:
            return r.status == 200
    except Exception:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


workdir = tempfile.mkdtemp(prefix="portico-startup-")
env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
env["PORTICO_LOG"] = "warn"
startups, rsss = [], []
try:
    for i in range(runs + 1):
        port = free_port()
        env["PORTICO_LISTEN"] = f"127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}/readyz"
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], cwd=workdir, env=env, stderr=subprocess.DEVNULL)
        while not ready(url):
            if proc.poll() is not None:
                sys.exit(f"portico exited with {proc.returncode}")
            time.sleep(0.001)
        elapsed = (time.perf_counter() - t0) * 1000
        time.sleep(1.0)
        rss = rss_kib(proc.pid)
        proc.terminate()
        proc.wait(timeout=10)
        if i > 0:  # run 0 created the database and keys
            startups.append(elapsed)
            rsss.append(rss)
finally:
    shutil.rmtree(workdir, ignore_errors=True)

print(f"runs: {runs}")
print(f"start to /readyz 200: median {statistics.median(startups):.1f} ms, max {max(startups):.1f} ms")
print(f"idle RSS: median {statistics.median(rsss) / 1024:.1f} MiB, max {max(rsss) / 1024:.1f} MiB")
