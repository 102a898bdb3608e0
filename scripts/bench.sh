#!/usr/bin/env bash
# Benchmark harness: our server (SQLite and PostgreSQL), the ceiling (a fixed-answer axum
# endpoint) and scim2-server (the Python reference server, from PyPI into a venv), measured
# side by side with the same generator (`scim-conformance load`) on this machine.
#
#   scripts/bench.sh --quick          # small sizes, under 5 minutes
#   scripts/bench.sh                  # full sizes (long: 1,000,000 users are seeded over HTTP)
#
# Options: --quick, --no-build, --skip-peer, --skip-postgres, --skip-sqlite, --skip-ours,
#          --skip-replicas, --replicas-only, --skip-ceiling, --criterion (full mode: also `cargo bench -p scim-core`).
# Environment: CARGO_TARGET_DIR, BENCH_PG (default postgres://postgres@127.0.0.1:5432),
#              BENCH_CONCURRENCY (default 16), BENCH_DURATION (seconds per workload),
#              BENCH_SERVER_BIN (another scim-server binary to measure as "ours"),
#              BENCH_REPLICAS (default "1 2 3": replica counts on one PostgreSQL database).
# Results: bench-results/<timestamp>/ (one JSON per measurement, log.txt, machine.txt,
# summary.txt with the side-by-side table, the ratios and the targets).
# Everything listens on 127.0.0.1; every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PEER_VERSION=0.8.3
TOKEN="bench-$(python3 -c 'import secrets; print(secrets.token_hex(24))')"

QUICK=0 BUILD=1 PEER=1 POSTGRES=1 SQLITE=1 OURS=1 CRITERION=0 REPLICAS=1 RUN_CEILING=1
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --skip-peer) PEER=0 ;;
    --skip-ceiling) RUN_CEILING=0 ;;
    --skip-postgres) POSTGRES=0 ;;
    --skip-sqlite) SQLITE=0 ;;
    --skip-ours) OURS=0 ;;
    --criterion) CRITERION=1 ;;
    --skip-replicas) REPLICAS=0 ;;
    --replicas-only) OURS=0 PEER=0 RUN_CEILING=0 ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done

CONC="${BENCH_CONCURRENCY:-16}"
if [ "$QUICK" = 1 ]; then
  MODE=quick DUR="${BENCH_DURATION:-3}" WARM=0.5
  SMALL=1000                       # W1, W3, W4 and the first W2 size, on a fresh database
  CYCLE_USERS=5000 CYCLE_GROUPS=20 CYCLE_MEMBERSHIPS=50000 TIERS=10,1000,5000
  CYCLE_LIMIT=30                   # seconds; a slower W7 is reported as stopped
  BIG=10000                        # last W2 size
  PEER_USERS=500
else
  MODE=full DUR="${BENCH_DURATION:-10}" WARM=1
  SMALL=10000
  CYCLE_USERS=100000 CYCLE_GROUPS=1000 CYCLE_MEMBERSHIPS=1000000 TIERS=10,10000,100000
  CYCLE_LIMIT=1800
  BIG=1000000
  PEER_USERS=1000
fi
SMALLEST_TIER="${TIERS%%,*}" LARGEST_TIER="${TIERS##*,}"

OUT="$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)-$MODE"
mkdir -p "$OUT/state"
LOG="$OUT/log.txt"
say() { echo "== $(date -u +%T) $*" | tee -a "$LOG" >&2; }

# --- cleanup of everything started here ---------------------------------------------------
PIDS=()
DBS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -f "$OUT"/ours-*.db "$OUT"/ours-*.db-wal "$OUT"/ours-*.db-shm
  for d in "${DBS[@]}"; do psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$d\"" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until $1 answers (HTTP) or the process $2 died; 60 s at most.
wait_http() {
  local url="$1" pid="$2" i
  for i in $(seq 1 600); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" != 000 ]; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "server exited early" >&2; return 1; fi
    sleep 0.1
  done
  echo "server did not answer $url within 60 s" >&2
  return 1
}

stop() {  # stops the server started last
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# --- build ---------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  say "building release binaries"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q \
    -p scim-provisioning-server -p scim-conformance -p scim-examples --bins --example ceiling)
fi
LOAD="$TARGET/release/scim-conformance"
SERVER="${BENCH_SERVER_BIN:-$TARGET/release/scim-server}"
CEILING_BIN="$TARGET/release/examples/ceiling"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "mode: $MODE (duration ${DUR}s per workload, concurrency $CONC, warm-up ${WARM}s)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (modified)')"
  echo "server binary: $SERVER"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "rustc: $(rustc --version 2>/dev/null)"
  echo "postgres: $(psql "$PG/postgres" -tAc 'show server_version' 2>/dev/null || echo unavailable)"
  echo "sizes: W1/W3/W4 at $SMALL users; W2 at $SMALL, $CYCLE_USERS, $BIG users; W7 $CYCLE_USERS users, $CYCLE_GROUPS groups, $CYCLE_MEMBERSHIPS memberships; W5/W6 groups of $TIERS; W8 $CYCLE_USERS users; peer at $PEER_USERS users"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" | tee -a "$LOG" >&2

# load LABEL NAME WORKLOAD [args...]: one measurement against $BASE, JSON to $OUT/LABEL-NAME.json.
load() {
  local label="$1" name="$2" workload="$3"; shift 3
  say "$label $name"
  local rc a conc=(--concurrency "$CONC") cpu=()
  for a in "$@"; do if [ "$a" = --concurrency ]; then conc=(); fi; done
  # PostgreSQL's processes share the cores: their CPU per request is reported beside ours.
  case "$label" in *postgres*) cpu=(--cpu-of postgres) ;; esac
  set +e
  "$LOAD" load --base-url "$BASE" --token "$TOKEN" --target "$label" --workload "$workload" \
    "${conc[@]}" "${cpu[@]}" --warmup "$WARM" --state "$STATE" --server-pid "$SERVER_PID" \
    --json "$OUT/$label-$name.json" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" != 0 ]; then say "$label $name: exit status $rc (errors are in the table)"; fi
  return 0
}

# start_ours DATABASE_URL: starts our server on a free port.
start_ours() {
  local port; port="$(free_port)"
  # The per-tenant rate limit (100 req/s by default) is off: we measure capacity.
  SCIM_LISTEN="127.0.0.1:$port" SCIM_DATABASE_URL="$1" SCIM_TOKEN="$TOKEN" SCIM_LOG=warn \
    SCIM_RATE_LIMIT__ENABLED=false "$SERVER" serve >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  BASE="http://127.0.0.1:$port/scim/v2"
  wait_http "http://127.0.0.1:$port/healthz" "$SERVER_PID"
}

# start_replicas DATABASE_URL N: N servers on one database; BASE lists their base URLs
# (the generator spreads its connections over them), SERVER_PID is the first, REPLICA_PIDS all.
start_replicas() {
  local url="$1" n="$2" i bases=() first=""
  REPLICA_PIDS=()
  for i in $(seq 1 "$n"); do
    start_ours "$url" || return 1
    bases+=("$BASE")
    REPLICA_PIDS+=("$SERVER_PID")
    [ -n "$first" ] || first="$SERVER_PID"
  done
  SERVER_PID="$first"
  BASE="$(IFS=,; echo "${bases[*]}")"
}

stop_replicas() {
  local p
  for p in "${REPLICA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${REPLICA_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# replicas: W1, W3 and W5 (smallest group) against 1, 2 and 3 replicas of our server on one
# fresh PostgreSQL database each, the generator's connections spread over the replicas.
replicas() {
  local n label
  for n in ${BENCH_REPLICAS:-1 2 3}; do
    label="ours-postgres-x$n"
    new_db postgres "r$n"
    if ! start_replicas "$DB_URL" "$n"; then say "$label: a replica did not start (see server.log): skipped"; stop_replicas; continue; fi
    STATE="$OUT/state/$label-state.json"
    load "$label" W1 W1 --users "$SMALL" --duration "$DUR"
    load "$label" W3 W3 --duration "$DUR"
    load "$label" W5-$SMALLEST_TIER W5 --group-size "$SMALLEST_TIER" --duration "$DUR"
    stop_replicas
  done
}

# new_db KIND N: a fresh database; its URL in DB_URL (not echoed: DBS must be updated in this
# shell, not in a command substitution's subshell, for the cleanup to drop it).
new_db() {
  local kind="$1" n="$2"
  if [ "$kind" = sqlite ]; then
    rm -f "$OUT/ours-$n.db"*
    DB_URL="sqlite://$OUT/ours-$n.db"
  else
    local name; name="scim_bench_$(date +%s)_$n"
    psql "$PG/postgres" -qc "CREATE DATABASE \"$name\"" >/dev/null
    DBS+=("$name")
    DB_URL="$PG/$name"
  fi
}

# ours KIND: every workload on our server with that database.
ours() {
  local kind="$1" label="ours-$1" url
  # 1. A fresh database with $SMALL users: W1, W2, W3, W4.
  new_db "$kind" 1; url="$DB_URL"
  if ! start_ours "$url"; then say "$label: the server did not start (see server.log): skipped"; return 0; fi
  STATE="$OUT/state/$label-state-1.json"
  load "$label" W1 W1 --users "$SMALL" --duration "$DUR"
  load "$label" W2-$SMALL W2 --users "$SMALL" --duration "$DUR"
  load "$label" W4 W4 --users "$SMALL" --duration "$DUR"
  load "$label" W3 W3 --duration "$DUR"
  stop
  # 2. A fresh database and server: the Entra initial cycle (W7), with the server's peak memory.
  new_db "$kind" 2; url="$DB_URL"
  if ! start_ours "$url"; then say "$label: the server did not start (see server.log): skipped"; return 0; fi
  STATE="$OUT/state/$label-state-2.json"
  load "$label" W7 entra-cycle --users "$CYCLE_USERS" --groups "$CYCLE_GROUPS" \
    --memberships "$CYCLE_MEMBERSHIPS" --tiers "$TIERS" --time-limit "$CYCLE_LIMIT"
  # 3. On the cycle's data: W2, W5 and W6 per group size, W8.
  load "$label" W2-$CYCLE_USERS W2 --users "$CYCLE_USERS" --duration "$DUR"
  local t
  for t in ${TIERS//,/ }; do
    load "$label" W5-$t W5 --group-size "$t" --duration "$DUR"
  done
  load "$label" W6-$SMALLEST_TIER W6 --group-size "$SMALLEST_TIER" --duration "$DUR"
  load "$label" W6-$LARGEST_TIER W6 --group-size "$LARGEST_TIER" --duration "$DUR"
  load "$label" W8 W8 --users "$CYCLE_USERS" --concurrency 1
  # 4. Grow to $BIG users: W2 at the largest size.
  load "$label" W2-$BIG W2 --users "$BIG" --duration "$DUR" --seed-concurrency 32
  # GET on the same data: the W2 target compares the filter with it.
  load "$label" W1-$BIG W1 --users "$BIG" --duration "$DUR"
  stop
}

if [ "$OURS" = 1 ]; then
  if [ "$SQLITE" = 1 ]; then ours sqlite; fi
  if [ "$POSTGRES" = 1 ]; then
    if psql "$PG/postgres" -qc 'select 1' >/dev/null 2>&1; then ours postgres
    else say "PostgreSQL unreachable at $PG: skipped"; fi
  fi
fi

if [ "$REPLICAS" = 1 ] && [ "$POSTGRES" = 1 ]; then
  if psql "$PG/postgres" -qc 'select 1' >/dev/null 2>&1; then replicas
  else say "PostgreSQL unreachable at $PG: replicas skipped"; fi
fi

# --- the ceiling ---------------------------------------------------------------------------
if [ "$RUN_CEILING" = 1 ]; then
port="$(free_port)"
CEILING_LISTEN="127.0.0.1:$port" "$CEILING_BIN" >>"$OUT/ceiling.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
BASE="http://127.0.0.1:$port/scim/v2"
wait_http "http://127.0.0.1:$port/healthz" "$SERVER_PID"
STATE="$OUT/state/ceiling-state.json"
# Fixed answers: nothing to verify.
for w in W1 W2 W3 W4; do load ceiling "$w" "$w" --users "$SMALL" --duration "$DUR" --no-verify; done
load ceiling W5 W5 --group-size "$SMALLEST_TIER" --duration "$DUR" --no-verify
load ceiling W6 W6 --group-size "$SMALLEST_TIER" --duration "$DUR" --no-verify
stop
fi

# --- the peer: scim2-server (Python) --------------------------------------------------------
if [ "$PEER" = 1 ]; then
  VENV="$TARGET/tmp/scim2-server-venv-$PEER_VERSION"
  if [ ! -f "$VENV/.installed" ]; then
    say "installing scim2-server==$PEER_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check --quiet "scim2-server==$PEER_VERSION"
    echo "$PEER_VERSION" > "$VENV/.installed"
  fi
  port="$(free_port)"
  "$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$port" --bearer-token "$TOKEN" \
    >>"$OUT/peer.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  BASE="http://127.0.0.1:$port/v2"
  wait_http "http://127.0.0.1:$port/v2/ServiceProviderConfig" "$SERVER_PID"
  STATE="$OUT/state/peer-state.json"
  for w in W1 W2 W4; do load peer "$w" "$w" --users "$PEER_USERS" --duration "$DUR"; done
  load peer W3 W3 --duration "$DUR"
  load peer W5 W5 --group-size "$SMALLEST_TIER" --duration "$DUR"
  load peer W6 W6 --group-size "$SMALLEST_TIER" --duration "$DUR"
  stop
fi

# --- criterion micro benchmarks (full mode, on request) ------------------------------------
if [ "$QUICK" = 0 ] && [ "$CRITERION" = 1 ]; then
  say "cargo bench -p scim-core"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo bench -p scim-core 2>&1 | tee "$OUT/criterion.txt")
fi

say "summary ($OUT/summary.txt)"
"$LOAD" load --summarize "$OUT"
