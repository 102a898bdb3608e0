#!/usr/bin/env bash
# CSV import benchmark (docs/benchmarks.md, "CSV import").
#
# Generates ROWS employees as a CSV file and a mapping, then measures with /usr/bin/time -v:
#   1. `scim-server import --dry-run` (every row checked and previewed, nothing written);
#   2. `scim-server import` into a fresh database (every row created, one change record each);
#   3. the same import again (every row unchanged, nothing written);
#   4. with --upload: the same file POSTed to a running `scim-server serve`
#      (`POST /inbound/v1/imports`) into another fresh database, timed until the job is done,
#      with the server's peak resident memory (VmHWM).
#
# Usage: scripts/bench-csv-import.sh [--rows N] [--postgres] [--upload] [--no-build]
# Environment: BENCH_SERVER_BIN (a scim-server binary to measure), BENCH_PG
# (postgres://postgres@127.0.0.1:5432, trust auth).
set -euo pipefail

ROWS=100000
DB=sqlite
UPLOAD=0
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --postgres) DB=postgres; shift ;;
    --upload) UPLOAD=1; shift ;;
    --no-build) BUILD=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
if [ "$BUILD" = 1 ] && [ -z "${BENCH_SERVER_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p scim-provisioning-server --bin scim-server)
fi
BIN=${BENCH_SERVER_BIN:-$TARGET/release/scim-server}
[ -x "$BIN" ] || { echo "no binary at $BIN (build it or set BENCH_SERVER_BIN)" >&2; exit 2; }

mkdir -p "$TARGET/tmp"
WORK=$(mktemp -d "$TARGET/tmp/csv-bench.XXXXXX")
DBS=()
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  for name in "${DBS[@]:-}"; do
    [ -n "$name" ] && psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A fresh database URL of the chosen kind.
new_db() {
  if [ "$DB" = postgres ]; then
    local name="csvbench_$(date +%s%N)"
    psql -q "$PG/postgres" -c "CREATE DATABASE $name" >/dev/null
    DBS+=("$name")
    echo "$PG/$name"
  else
    echo "sqlite://$WORK/scim-$(date +%s%N).db"
  fi
}

echo "generating $ROWS rows in $WORK/employees.csv"
python3 - "$ROWS" "$WORK/employees.csv" <<'EOF'
import csv, sys
rows, path = int(sys.argv[1]), sys.argv[2]
depts = ["100", "200", "300", "400"]
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["Employee ID", "First Name", "Last Name", "Email", "Title", "Dept", "Manager ID", "Active"])
    for i in range(1, rows + 1):
        manager = str((i // 50) * 50) if i % 50 and i > 50 else ""
        w.writerow([f"E{i:07d}", "Given", f"Family{i}", f"employee{i}@contoso.example",
                    "Engineer, Level 2" if i % 3 else "Analyst", depts[i % 4],
                    f"E{int(manager):07d}" if manager else "", "true"])
EOF
cat > "$WORK/mapping.toml" <<'EOF'
[attributes]
externalId = { from = "Employee ID" }
userName = { from = "Email", transform = ["trim", "lowercase"] }
"name.givenName" = { from = "First Name" }
"name.familyName" = { from = "Last Name" }
displayName = { concat = ["First Name", "Last Name"] }
'emails[type eq "work"].value' = { from = "Email", transform = ["lowercase"] }
title = { from = "Title" }
active = { from = "Active" }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = { from = "Dept", lookup = "departments" }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" = { from = "Manager ID" }

[lookup.departments]
"100" = "Engineering"
"200" = "Finance"
"300" = "Sales"
"400" = "Operations"
EOF
SIZE=$(du -h "$WORK/employees.csv" | cut -f1)

# Runs the importer under /usr/bin/time -v; prints "seconds peak_kib".
measure() {
  local name="$1"; shift
  /usr/bin/time -v -o "$WORK/$name.time" "$BIN" import "$WORK/employees.csv" \
    --mapping "$WORK/mapping.toml" --report "$WORK/$name.report.csv" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name.time")
  python3 -c "
import sys
parts = [float(p) for p in '$wall'.split(':')]
s = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
print(f'{s:.1f} {int(\"$rss\")}')"
}

report() {
  local what="$1" line="$2"
  local seconds=${line% *} kib=${line#* }
  python3 -c "print(f'| {\"$what\":<44} | {$ROWS / max($seconds, 0.001):>9,.0f} | {$seconds:>7.1f} | {$kib / 1024:>8.1f} |')"
}

export SCIM_LOG=warn
export SCIM_DATABASE_URL
SCIM_DATABASE_URL=$(new_db)
"$BIN" migrate >/dev/null

echo
echo "$ROWS rows ($SIZE), $DB, $(nproc) cores, binary $BIN"
echo
echo "| run                                          |    rows/s |       s | peak MiB |"
echo "|----------------------------------------------|-----------|---------|----------|"
report "import --dry-run (empty directory)" "$(measure dry --dry-run)"
grep -q "would be created: $ROWS" "$WORK/dry.out" || { echo "dry run did not preview every row:"; cat "$WORK/dry.out" "$WORK/dry.err"; exit 1; }
report "import (every row created)" "$(measure first)"
grep -q "^created: $ROWS" "$WORK/first.out" || { echo "import did not create every row:"; cat "$WORK/first.out"; tail "$WORK/first.err"; exit 1; }
report "import again (every row unchanged)" "$(measure again)"
grep -q "^unchanged: $ROWS" "$WORK/again.out" || { echo "re-import changed rows:"; cat "$WORK/again.out"; exit 1; }

if [ "$UPLOAD" = 1 ]; then
  SCIM_DATABASE_URL=$(new_db)
  TOKEN="csv-bench-token-$(date +%s%N)"
  cat > "$WORK/server.toml" <<EOF
[inbound]
max_import_bytes = 268435456
poll_interval_ms = 200

[inbound.mappings]
hr = "$WORK/mapping.toml"
EOF
  SCIM_TOKEN=$TOKEN SCIM_LISTEN=127.0.0.1:0 "$BIN" --config "$WORK/server.toml" serve >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do grep -q "listening on" "$WORK/server.out" && break; sleep 0.1; done
  BASE=$(sed -n 's/^scim-server listening on \(http[^ ]*\)\/scim\/v2.*/\1/p' "$WORK/server.out" | head -1)
  [ -n "$BASE" ] || { echo "the server did not start"; cat "$WORK/server.err"; exit 1; }
  START=$(date +%s.%N)
  curl -sS -o "$WORK/upload.json" -w '%{http_code}' -X POST "$BASE/inbound/v1/imports?mapping=hr" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' --data-binary "@$WORK/employees.csv" > "$WORK/upload.status"
  [ "$(cat "$WORK/upload.status")" = 202 ] || { echo "upload refused:"; cat "$WORK/upload.json"; exit 1; }
  ACCEPTED=$(date +%s.%N)
  # The queue's state from the database (cheap), not the job resource (which lists every row).
  until "$BIN" --config "$WORK/server.toml" inbound status --json | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if s['queued'] + s['running'] == 0 else 1)"; do
    sleep 1
  done
  DONE=$(date +%s.%N)
  HWM=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  python3 -c "
accepted, done = $ACCEPTED - $START, $DONE - $START
print(f'| {\"upload: POST until 202 (checks, queues)\":<44} | {$ROWS / accepted:>9,.0f} | {accepted:>7.1f} |          |')
print(f'| {\"upload: POST until the job is done\":<44} | {$ROWS / done:>9,.0f} | {done:>7.1f} | {$HWM / 1024:>8.1f} |')"
  echo
  echo "(upload peak MiB: the server's VmHWM)"
fi
