#!/usr/bin/env bash
# Portico against a peer: Node's oidc-provider (OpenID Certified), measured by the same load
# driver (examples/portico-bench) in the same run, in alternating rounds.
#
# Usage: scripts/bench-vs-peer.sh
#   CONNECTIONS=32 DURATION=8 ROUNDS=3 WARMUP=2 scripts/bench-vs-peer.sh
#
# What it does:
#   1. builds Portico and the driver (release; a no-op when they are up to date; BUILD=0 skips);
#   2. installs oidc-provider $OIDC_PROVIDER_VERSION from npm into a temporary folder and starts
#      scripts/peer/oidc-provider.mjs there: one confidential client (client_secret_basic) with
#      the client_credentials grant, a default resource indicator whose access tokens are RS256
#      JWTs, one RSA 2048 key in its JWKS, discovery;
#   3. starts Portico with zero configuration plus a portico.toml in a temporary folder that
#      declares the same kind of client, with `access_token_alg = "RS256"` (SQLite);
#   4. per round and per workload (client-credentials, jwks, discovery): Portico, then the peer,
#      same connections, duration and warm-up;
#   5. prints a Markdown table: per workload the median req/s of each, Portico/peer, the median
#      p99 of each and the median server CPU time per request (user + system from /proc, over
#      the measured seconds: what a request costs, whatever share of the cores the server got),
#      and each process's VmRSS at the end of the run; the load average before, per round and
#      after, since the two servers and the driver share this machine's cores.
# Both servers listen on loopback only and are stopped on exit. Any failure (a build, a server
# that does not come up, a request that fails) ends the script with a non-zero status.
set -euo pipefail

OIDC_PROVIDER_VERSION=9.13.3
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
BUILD=${BUILD:-1}
PORTICO_PORT=${PORTICO_PORT:-18181}
PEER_PORT=${PEER_PORT:-18191}
WORKLOADS=(client-credentials jwks discovery)

CLIENT_ID=bench
CLIENT_SECRET=bench-secret-0123456789abcdef0123456789
SCOPE=api:read

for n in CONNECTIONS DURATION ROUNDS WARMUP PORTICO_PORT PEER_PORT; do
  least=1
  [[ $n == WARMUP ]] && least=0
  if ! [[ ${!n} =~ ^[0-9]+$ ]] || ((10#${!n} < least)); then
    echo "$n must be a whole number, at least $least (it is '${!n}')" >&2
    exit 2
  fi
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
portico_bin=$target/release/portico
driver_bin=$target/release/examples/portico-bench

work=$(mktemp -d /tmp/portico-vs-peer.XXXXXX)
portico_pid=
peer_pid=
driver_pid=

stop() {
  local pid=$1
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$driver_pid"
  stop "$portico_pid"
  stop "$peer_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "bench-vs-peer: $*" >&2
  exit 1
}

# Waits until $2 answers 200, as long as process $1 lives (30 s at most).
wait_ready() {
  local pid=$1 url=$2 log=$3
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || {
      cat "$log" >&2
      fail "the server for $url exited"
    }
    curl -fs -o /dev/null "$url" && return 0
    sleep 0.1
  done
  cat "$log" >&2
  fail "$url did not answer within 30 s"
}

rss_mib() {
  awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# Median of the numbers on stdin.
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit 1
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
  }'
}

echo "load before: $(uptime)"

# 1. Build.
if [[ $BUILD != 0 ]]; then
  (cd "$repo" && cargo build --release && cargo build --release --example portico-bench) ||
    fail "cargo build failed"
fi
[[ -x $portico_bin && -x $driver_bin ]] || fail "no $portico_bin or $driver_bin (build first)"

# 2. The peer.
command -v node >/dev/null || fail "node is not installed"
command -v npm >/dev/null || fail "npm is not installed"
mkdir -p "$work/peer"
cp "$repo/scripts/peer/oidc-provider.mjs" "$work/peer/"
(cd "$work/peer" && npm init -y >/dev/null &&
  npm install --no-audit --no-fund --save-exact "oidc-provider@$OIDC_PROVIDER_VERSION" >npm.log 2>&1) ||
  {
    cat "$work/peer/npm.log" >&2
    fail "npm install oidc-provider@$OIDC_PROVIDER_VERSION failed"
  }
jose_version=$(cd "$work/peer" && node -p 'require("jose/package.json").version' 2>/dev/null || echo "?")
NODE_ENV=production PEER_PORT=$PEER_PORT PEER_CLIENT_ID=$CLIENT_ID \
  PEER_CLIENT_SECRET=$CLIENT_SECRET PEER_SCOPE=$SCOPE \
  node "$work/peer/oidc-provider.mjs" >"$work/peer.log" 2>&1 &
peer_pid=$!
peer_issuer=http://127.0.0.1:$PEER_PORT
wait_ready "$peer_pid" "$peer_issuer/.well-known/openid-configuration" "$work/peer.log"

# 3. Portico.
mkdir -p "$work/portico"
cat >"$work/portico/portico.toml" <<EOF
[server]
listen = "127.0.0.1:$PORTICO_PORT"
issuer = "http://127.0.0.1:$PORTICO_PORT"

[oidc]
access_token_alg = "RS256"

[[clients]]
client_id = "$CLIENT_ID"
type = "confidential"
client_secret = "$CLIENT_SECRET"
redirect_uris = ["http://127.0.0.1/cb"]
grant_types = ["client_credentials"]
scopes = ["$SCOPE"]
EOF
(cd "$work/portico" && exec env -u PORTICO_CONFIG PORTICO_LOG=warn "$portico_bin") \
  >"$work/portico.log" 2>&1 &
portico_pid=$!
portico_issuer=http://127.0.0.1:$PORTICO_PORT
wait_ready "$portico_pid" "$portico_issuer/readyz" "$work/portico.log"

echo "portico $(git -C "$repo" rev-parse --short HEAD) (pid $portico_pid, idle RSS $(rss_mib "$portico_pid") MiB)"
echo "oidc-provider $OIDC_PROVIDER_VERSION, jose $jose_version, node $(node --version) (pid $peer_pid, idle RSS $(rss_mib "$peer_pid") MiB)"
echo "$ROUNDS rounds x ${WORKLOADS[*]}; $CONNECTIONS connections, ${DURATION}s measured after ${WARMUP}s warm-up each"

# 4. Alternating rounds. Each result is a line "server workload req/s p99 cpu-µs" in $results.
results=$work/results
: >"$results"
# CPU time (user + system) of process $1 so far, in clock ticks.
cpu_ticks() {
  local stat fields
  stat=$(<"/proc/$1/stat")
  read -r -a fields <<<"${stat##*) }" # from field 3 (state) on: utime is 14, stime 15
  echo $((fields[11] + fields[12]))
}
clock_ticks=$(getconf CLK_TCK)
# The server's CPU is sampled over the measured seconds but the first and last half second.
cpu_from=$(awk -v w="$WARMUP" 'BEGIN { print w + 0.5 }')
cpu_for=$(awk -v d="$DURATION" 'BEGIN { print (d > 1) ? d - 1 : d / 2 }')
measure() {
  local server=$1 issuer=$2 pid=$3 workload=$4 out=$work/driver.out row
  local ticks0 ticks1 t0 t1 cpu_us
  "$driver_bin" --issuer "$issuer" --workload "$workload" \
    --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" --scope "$SCOPE" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" --pid "$pid" \
    >"$out" 2>&1 &
  driver_pid=$!
  sleep "$cpu_from"
  ticks0=$(cpu_ticks "$pid")
  t0=$(date +%s.%N)
  sleep "$cpu_for"
  ticks1=$(cpu_ticks "$pid")
  t1=$(date +%s.%N)
  wait "$driver_pid" || {
    cat "$out" >&2
    fail "the driver failed ($server, $workload)"
  }
  driver_pid=
  # The row under the header: connections, req/s, p50, p90, p99, errors, RSS.
  row=$(awk -F'\t' 'seen { print; exit } /^connections\t/ { seen = 1 }' "$out")
  [[ -n $row ]] || {
    cat "$out" >&2
    fail "no result row from the driver ($server, $workload)"
  }
  IFS=$'\t' read -r _ rate _ _ p99 errors _ <<<"$row"
  if [[ $errors != 0 ]]; then
    cat "$out" >&2
    fail "$errors failed requests ($server, $workload)"
  fi
  kill -0 "$pid" 2>/dev/null || fail "$server exited during $workload"
  # Server CPU per request: CPU seconds in the window over the requests the rate puts in it.
  cpu_us=$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$clock_ticks" -v t0="$t0" -v t1="$t1" \
    -v r="$rate" 'BEGIN { n = r * (t1 - t0); if (n > 0) printf "%.0f", (b - a) / hz / n * 1e6; else print 0 }')
  printf '%s %s %s %s %s\n' "$server" "$workload" "$rate" "$p99" "$cpu_us" >>"$results"
  printf '  round %s  %-18s  %-13s  %8s req/s  p99 %6s ms  %5s µs CPU/request\n' \
    "$round" "$workload" "$server" "$rate" "$p99" "$cpu_us"
}
for round in $(seq "$ROUNDS"); do
  echo "round $round: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for workload in "${WORKLOADS[@]}"; do
    measure portico "$portico_issuer" "$portico_pid" "$workload"
    measure oidc-provider "$peer_issuer" "$peer_pid" "$workload"
  done
done

portico_rss=$(rss_mib "$portico_pid")
peer_rss=$(rss_mib "$peer_pid")

# 5. The table.
pick() { awk -v s="$1" -v w="$2" -v c="$3" '$1 == s && $2 == w { print $c }' "$results" | median; }
echo
echo "| workload, $CONNECTIONS connections | Portico req/s | oidc-provider req/s | Portico / oidc-provider | Portico p99 ms | oidc-provider p99 ms | Portico CPU µs/request | oidc-provider CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|"
for workload in "${WORKLOADS[@]}"; do
  p=$(pick portico "$workload" 3)
  q=$(pick oidc-provider "$workload" 3)
  ratio=$(awk -v a="$p" -v b="$q" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '| %s | %.0f | %.0f | **%s** | %.2f | %.2f | %.0f | %.0f |\n' "$workload" "$p" "$q" "$ratio" \
    "$(pick portico "$workload" 4)" "$(pick oidc-provider "$workload" 4)" \
    "$(pick portico "$workload" 5)" "$(pick oidc-provider "$workload" 5)"
done
echo
echo "| RSS at the end of the run | Portico | oidc-provider |"
echo "|---|---|---|"
echo "| VmRSS MiB | $portico_rss | $peer_rss |"
echo
echo "medians of $ROUNDS rounds; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load after: $(uptime)"
