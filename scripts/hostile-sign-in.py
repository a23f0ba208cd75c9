#!/usr/bin/env python3
"""RSS of a Portico binary before and after a flood of failed admin sign-ins.

Usage: scripts/hostile-sign-in.py path/to/portico [requests] [sources] [concurrency] [KEY=VALUE...]

Starts the binary with zero configuration (SQLite, generated master key) in a scratch directory
on a free loopback port, reads VmRSS, then sends `requests` unauthenticated sign-ins (each with
its own form cookie, CSRF token and random e-mail) from `sources` loopback addresses
(127.0.0.2, 127.0.0.3, ...), `concurrency` at a time, and reads VmRSS again after the flood
and after a 10 s rest. KEY=VALUE pairs are extra environment variables for the server, e.g.
PORTICO_ADMIN_DELAY_BASE_MS=0 to let every request reach the password hash. Loopback only.
"""
import collections
import concurrent.futures
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

binary = os.path.abspath(sys.argv[1])
requests = int(sys.argv[2]) if len(sys.argv) > 2 else 200
sources = int(sys.argv[3]) if len(sys.argv) > 3 else 10
concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 50
extra = dict(arg.split("=", 1) for arg in sys.argv[5:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def sign_in(port, source, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=(source, 0))
    try:
        conn.request("GET", "/admin/sign-in")
        res = conn.getresponse()
        html = res.read().decode()
        cookie = res.getheader("set-cookie").split(";")[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
        body = urllib.parse.urlencode(
            {"csrf": csrf, "email": f"{uuid.uuid4().hex}@example.com", "password": f"guess {n}"}
        )
        conn.request(
            "POST",
            "/admin/sign-in",
            body=body,
            headers={"content-type": "application/x-www-form-urlencoded", "cookie": cookie},
        )
        res = conn.getresponse()
        res.read()
        return res.status
    except Exception as e:  # a refused or reset connection counts as such
        return type(e).__name__
    finally:
        conn.close()


def main():
    workdir = tempfile.mkdtemp(prefix="portico-hostile-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        PORTICO_LISTEN=f"127.0.0.1:{port}",
        PORTICO_ISSUER=f"http://127.0.0.1:{port}",
        PORTICO_LOG="warn",
        **extra,
    )
    proc = subprocess.Popen([binary], cwd=workdir, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        before = status_field(proc.pid, "VmRSS")
        started = time.monotonic()
        addresses = [f"127.0.0.{i + 2}" for i in range(sources)]
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            statuses = list(
                pool.map(lambda n: sign_in(port, addresses[n % sources], n), range(requests))
            )
        elapsed = time.monotonic() - started
        after = status_field(proc.pid, "VmRSS")
        time.sleep(10)
        rested = status_field(proc.pid, "VmRSS")
        peak = status_field(proc.pid, "VmHWM")
        counts = dict(collections.Counter(map(str, statuses)))
        print(
            f"{requests} sign-ins from {sources} addresses, {concurrency} at a time, "
            f"{elapsed:.1f} s; answers {counts}; extra env {extra or '-'}"
        )
        print(
            f"VmRSS before {before:.1f} MiB, after {after:.1f} MiB, "
            f"10 s later {rested:.1f} MiB; peak (VmHWM) {peak:.1f} MiB"
        )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


main()
