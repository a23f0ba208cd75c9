#!/usr/bin/env bash
# RSS of a Portico binary under a long wrk run that nobody scrapes /metrics during.
#
# Usage: scripts/soak-rss.sh path/to/portico [seconds] [connections]
#
# Starts the binary with zero configuration in a scratch directory on a loopback port, runs wrk
# (2 threads) against /healthz and a 404 path in turn (scripts/soak-paths.lua), and prints
# VmRSS every 15 s with the requests sent so far (read from the server's own counter at the end
# only: /metrics is not scraped during the run). Loopback only; stops by itself.
set -euo pipefail
bin=$(realpath "$1")
secs=${2:-300}
conns=${3:-64}
here=$(dirname "$(realpath "$0")")
dir=$(mktemp -d /tmp/portico-soak.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cd "$dir"
env -u PORTICO_LOG PORTICO_LOG=warn PORTICO_LISTEN=127.0.0.1:$port PORTICO_ISSUER=http://127.0.0.1:$port "$bin" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status; }
echo "t=0s VmRSS $(rss) MiB (idle)"
wrk -t2 -c"$conns" -d"${secs}s" -s "$here/soak-paths.lua" "http://127.0.0.1:$port" > "$dir/wrk.txt" &
wrk_pid=$!
t=0
while kill -0 $wrk_pid 2>/dev/null; do
  sleep 15; t=$((t + 15))
  kill -0 $wrk_pid 2>/dev/null && echo "t=${t}s VmRSS $(rss) MiB"
done
wait $wrk_pid || true
echo "end VmRSS $(rss) MiB"
grep -E "requests in|Requests/sec" "$dir/wrk.txt"
total=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^http_requests_total/ {s += $NF} END {printf "%d", s}')
echo "server counted $total requests"
