#!/usr/bin/env python3
"""Series in /metrics after 3,000 requests with made-up HTTP methods. Usage: scripts/made-up-methods.py path/to/portico (loopback only)."""
import http.client, os, socket, subprocess, sys, tempfile, time
binary = sys.argv[1]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
d = tempfile.mkdtemp()
env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
env.update(PORTICO_LISTEN=f"127.0.0.1:{port}", PORTICO_ISSUER=f"http://127.0.0.1:{port}", PORTICO_LOG="warn")
p = subprocess.Popen([binary], cwd=d, env=env, stderr=subprocess.DEVNULL)
time.sleep(1.5)
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(3000):
    conn.request(f"M{i}", "/healthz"); conn.getresponse().read()
conn.request("GET", "/metrics"); body = conn.getresponse().read().decode()
series = [l for l in body.splitlines() if l and not l.startswith("#")]
print(f"{len(series)} series after 3000 made-up methods")
p.terminate(); p.wait()
