#!/usr/bin/env bash
# The soak: a long mixed workload (logins, refreshes, userinfo, webhooks) across several Portico
# instances on one PostgreSQL database, with RSS, p99 and errors sampled every 10 s and plotted.
#
# Usage: scripts/soak.sh
#   MINUTES=30 INSTANCES=2 RATE=150 CONNECTIONS=16 OUT=docs/bench/soak scripts/soak.sh
#   BACKEND=sqlite INSTANCES=1 scripts/soak.sh      # one instance on SQLite
#
# What it does:
#   1. builds Portico and the driver (release; BUILD=0 skips);
#   2. makes a fresh PostgreSQL database ($POSTGRES_URL, default the local server) or a SQLite
#      file, and writes a portico.toml with `portico-bench setup`: the driver's upstream
#      stand-in as the provider, the bench client, and a webhook endpoint for login.succeeded
#      pointing at the driver's receiver;
#   3. starts INSTANCES Portico processes on that database, each on its own loopback port with
#      the issuer of the balancer in front of them (all share one master key file);
#   4. runs `portico-bench --workload mixed` with the driver as the load balancer (each new
#      connection to the next instance in turn): logins, refreshes and userinfo 1:3:6 at RATE
#      requests/s in all, for MINUTES;
#   5. writes OUT.csv (one row per 10 s: req/s, errors so far, p99 per kind, each instance's
#      RSS, webhook events received) and OUT.svg (the same, plotted), and prints whether every
#      login's webhook event arrived.
# Everything listens on loopback only and is stopped on exit; the database is dropped.
set -euo pipefail

MINUTES=${MINUTES:-30}
INSTANCES=${INSTANCES:-2}
RATE=${RATE:-150}
CONNECTIONS=${CONNECTIONS:-16}
EVERY=${EVERY:-10}
BACKEND=${BACKEND:-postgres}
BUILD=${BUILD:-1}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BASE_PORT=${BASE_PORT:-18281}

for n in MINUTES INSTANCES RATE CONNECTIONS EVERY BASE_PORT; do
  if ! [[ ${!n} =~ ^[0-9]+$ ]] || ((10#${!n} < 1)); then
    echo "$n must be a whole number, at least 1 (it is '${!n}')" >&2
    exit 2
  fi
done
case $BACKEND in
  postgres) ;;
  sqlite)
    if ((INSTANCES != 1)); then
      echo "BACKEND=sqlite runs one instance (INSTANCES=1): SQLite is one machine's database" >&2
      exit 2
    fi ;;
  *) echo "BACKEND must be postgres or sqlite" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$repo/docs/bench/soak-$BACKEND}
target=${CARGO_TARGET_DIR:-$repo/target}
portico_bin=$target/release/portico
driver_bin=$target/release/examples/portico-bench

work=$(mktemp -d /tmp/portico-soak.XXXXXX)
db_name=portico_soak_$(date +%s)_$$
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ $BACKEND == postgres ]]; then
    psql "$POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap stop EXIT

if [[ $BUILD == 1 ]]; then
  (cd "$repo" && cargo build --release --locked --bin portico --example portico-bench)
fi

lb_port=$BASE_PORT
upstream=127.0.0.1:$((BASE_PORT + 90))
hooks=127.0.0.1:$((BASE_PORT + 91))
setup_args=(setup --dir "$work" --listen "127.0.0.1:$lb_port" --upstream-listen "$upstream"
  --webhook-url "http://$hooks/hooks")
if [[ $BACKEND == postgres ]]; then
  psql "$POSTGRES_URL" -qc "CREATE DATABASE $db_name" >/dev/null
  setup_args+=(--database-url "${POSTGRES_URL%/*}/$db_name")
fi
"$driver_bin" "${setup_args[@]}" >/dev/null

ready() {
  for _ in $(seq 300); do
    curl -fs "http://$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "Portico at $1 did not become ready" >&2
  return 1
}

backends=()
pid_args=()
for i in $(seq "$INSTANCES"); do
  addr=127.0.0.1:$((BASE_PORT + i))
  # The first instance applies the migrations and makes the master key; the rest start after.
  # `exec` keeps the subshell's pid, so $! is Portico's own.
  (cd "$work" && PORTICO_CONFIG="$work/portico.toml" PORTICO_LISTEN=$addr \
    exec "$portico_bin" serve >"$work/portico-$i.log" 2>&1) &
  pids+=($!)
  ready "$addr"
  backends+=(--backend "$addr")
  pid_args+=(--pid "${pids[-1]}")
done

echo "soak: $INSTANCES instance(s) on $BACKEND, $MINUTES min, $RATE req/s, $CONNECTIONS connections; load $(cut -d' ' -f1-3 /proc/loadavg)"
"$driver_bin" --issuer "http://127.0.0.1:$lb_port" --workload mixed \
  --client-id bench --client-secret bench-secret-0123456789abcdef0123456789 \
  --upstream-listen "$upstream" --webhook-listen "$hooks" \
  "${backends[@]}" "${pid_args[@]}" --connections "$CONNECTIONS" --rate "$RATE" \
  --duration $((MINUTES * 60)) --every "$EVERY" --csv "$OUT.csv" --svg "$OUT.svg"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$INSTANCES"); do
  errors=$(grep -c '"level":"ERROR"\|ERROR' "$work/portico-$i.log" || true)
  echo "instance $i log: $errors error lines"
  grep -m3 'ERROR' "$work/portico-$i.log" || true
done
