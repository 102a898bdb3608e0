#!/usr/bin/env bash
# Load-independent profile of the read path: instructions per request (callgrind) of
# `GET /Users/{id}` (W1) and `GET /Users?filter=userName eq "…"` (W2), on SQLite and PostgreSQL,
# with the `SCIM_TOKEN` environment token and with a stored token, plus the statements each
# request sends (PostgreSQL's pg_stat_statements-free count: `log_statement`-like counting from
# sqlx's debug log).
#
#   scripts/profile-reads.sh                 # both databases, 300 requests per case
#   PROFILE_REQUESTS=1000 scripts/profile-reads.sh --skip-postgres
#   scripts/profile-reads.sh --writes        # the write path instead: W3 `POST /Users` and W4
#                                            # Entra's `PATCH /Users/{id}`, env token
#
# Needs valgrind (callgrind_control), the release binaries (`cargo build --release -p
# scim-provisioning-server -p scim-conformance`), and for PostgreSQL `psql` reaching BENCH_PG
# (postgres://postgres@127.0.0.1:5432). Results: bench-results/<timestamp>-profile/ with one
# callgrind file per case and summary.txt (instructions per request, statements per request).
#
# How: the server is seeded (1,000 users) outside valgrind, then restarted under callgrind with
# instrumentation off; after one unmeasured warm-up pass, instrumentation is switched on for
# exactly N requests (plus the generator's one verifying request) on one connection, and the
# totals are dumped. Instruction counts do not depend on the machine's load.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
SERVER="${BENCH_SERVER_BIN:-$TARGET/release/scim-server}"
LOAD="${PROFILE_LOAD_BIN:-$TARGET/release/scim-conformance}"
N="${PROFILE_REQUESTS:-300}"
USERS="${PROFILE_USERS:-1000}"
POSTGRES=1 SQLITE=1 CALLGRIND=1 WRITES=0
for a in "$@"; do
  case "$a" in
    --statements-only) CALLGRIND=0 ;;
    --skip-postgres) POSTGRES=0 ;;
    --skip-sqlite) SQLITE=0 ;;
    --writes) WRITES=1 ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
CASES="W1:env W1:stored W2:env W2:stored"
# Statements a request sends (not the readiness probe or the job pollers): reads by their text;
# writes by their transaction's statements.
COUNTED='summary="(SELECT r\.|SELECT q\.|SELECT \*|SELECT COUNT|SELECT m\.|SELECT id, tenant_id, secret_hash|BEGIN)'
if [ "$WRITES" = 1 ]; then
  CASES="W3:env W4:env"
  COUNTED='summary="(SELECT r\.|SELECT id, tenant_id, secret_hash|BEGIN|COMMIT|INSERT INTO (resources|resource_values|memberships|tenant_chain|scim_changes)|UPDATE (resources|tenant_chain)|DELETE FROM (resource_values|memberships|scim_changes_pending)|SELECT last_seq|SELECT pg_try_advisory|SELECT p\.|SELECT c\.)'
fi
OUT="${PROFILE_OUT:-$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)-profile}"
mkdir -p "$OUT"
TOKEN="prof-$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
PIDS=() DBS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -f "$OUT"/*.db "$OUT"/*.db-wal "$OUT"/*.db-shm
  for d in "${DBS[@]}"; do psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$d\"" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  local i
  for i in $(seq 1 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "server exited early" >&2; return 1; }
    sleep 0.2
  done
  echo "no answer from $1" >&2; return 1
}

# start [valgrind args...]: the server on $DB_URL, its pid in SERVER_PID, base URL in BASE.
start() {
  local port; port="$(free_port)"
  SCIM_LISTEN="127.0.0.1:$port" SCIM_DATABASE_URL="$DB_URL" SCIM_TOKEN="$TOKEN" \
    SCIM_LOG="${PROFILE_LOG:-warn}" SCIM_RATE_LIMIT__ENABLED=false \
    "$@" "$SERVER" serve >>"$OUT/server-$LABEL.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  BASE="http://127.0.0.1:$port/scim/v2"
  wait_http "http://127.0.0.1:$port/healthz" "$SERVER_PID"
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }

load() {  # load TOKEN WORKLOAD ARGS...
  local token="$1" w="$2"; shift 2
  "$LOAD" load --base-url "$BASE" --token "$token" --workload "$w" --users "$USERS" \
    --state "$OUT/state-$LABEL.json" --target "$LABEL" "$@" >>"$OUT/load-$LABEL.log" 2>&1
}

profile_db() {  # profile_db KIND
  LABEL="$1"
  if [ "$1" = sqlite ]; then
    DB_URL="sqlite://$OUT/profile.db"
  else
    local name; name="scim_profile_$(date +%s)"
    psql "$PG/postgres" -qc "CREATE DATABASE \"$name\"" >/dev/null
    DBS+=("$name"); DB_URL="$PG/$name"
  fi
  start
  load "$TOKEN" W1 --requests 1 --warmup 0 --concurrency 1
  stop
  local stored
  stored="$(SCIM_DATABASE_URL="$DB_URL" "$SERVER" token create --label profile 2>/dev/null | tail -1)"
  [ -n "$stored" ] || { echo "token create gave no secret" >&2; exit 1; }
  # Statements per request: sqlx logs each statement at debug level.
  PROFILE_LOG="warn,sqlx::query=debug" start
  : >"$OUT/server-$LABEL.log"
  # Only statements a request sends count (not the readiness probe or the job pollers).
  statements() {
    sed 's/\x1b\[[0-9;]*m//g' "$OUT/server-$LABEL.log" | grep -a 'sqlx::query' \
      | grep -Ec "$COUNTED" || true
  }
  for case in $CASES; do
    local w="${case%%:*}" t="${case##*:}" tok="$TOKEN"
    [ "$t" = stored ] && tok="$stored"
    local before; before="$(statements)"
    load "$tok" "$w" --requests 100 --warmup 0 --concurrency 1
    local after; after="$(statements)"
    echo "$LABEL $w $t statements per request: $(python3 -c "print(round(($after - $before) / 101, 2))")" \
      | tee -a "$OUT/summary.txt"
  done
  cp "$OUT/server-$LABEL.log" "$OUT/statements-$LABEL.log"
  stop
  [ "$CALLGRIND" = 1 ] || return 0
  for case in $CASES; do
    local w="${case%%:*}" t="${case##*:}" tok="$TOKEN"
    local file="$OUT/callgrind-$LABEL-$w-$t.out"
    [ "$t" = stored ] && tok="$stored"
    start valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$file"
    load "$tok" "$w" --requests 50 --warmup 0 --concurrency 1   # warm caches and pools, unmeasured
    callgrind_control -i on "$SERVER_PID" >/dev/null
    load "$tok" "$w" --requests "$N" --warmup 0 --concurrency 1
    callgrind_control -i off "$SERVER_PID" >/dev/null
    stop
    local total
    total="$(callgrind_annotate "$file" 2>/dev/null | grep 'PROGRAM TOTALS' | grep -Eo '^[0-9,]+' | tr -d , || true)"
    echo "$LABEL $w $t instructions per request: $(python3 -c "print(round($total / ($N + 1)))") ($total over $((N + 1)) requests)" \
      | tee -a "$OUT/summary.txt"
  done
}

[ "$SQLITE" = 1 ] && profile_db sqlite
[ "$POSTGRES" = 1 ] && profile_db postgres
echo "results: $OUT"
