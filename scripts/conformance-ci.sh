#!/usr/bin/env bash
# Runs the conformance runner (all profiles) against the reference binary, first on SQLite, then
# on PostgreSQL. Fails on any failed check. Used by .ci/run; runnable by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_BASE="${SCIM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
cargo build --locked -q -p scim-provisioning-server -p scim-conformance
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
server="$target_dir/debug/scim-server"
runner="$target_dir/debug/scim-conformance"
work=$(mktemp -d)
token="ci-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_against() {
  local label=$1 database_url=$2 port
  port=$(free_port)
  SCIM_LISTEN="127.0.0.1:$port" SCIM_DATABASE_URL="$database_url" SCIM_TOKEN="$token" SCIM_LOG=warn \
    "$server" serve >"$work/$label.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$label.log"; echo "server exited" >&2; exit 1; }
    sleep 0.2
  done
  echo "--- conformance on $label"
  if ! "$runner" --base-url "http://127.0.0.1:$port/scim/v2" --token "$token" --profile all \
      --json "$work/$label.json"; then
    echo "--- server log ($label)"; tail -n 50 "$work/$label.log"; exit 1
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

run_against sqlite "sqlite://$work/conformance.db"
db="scim_conformance_$$"
psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS $db" -qc "CREATE DATABASE $db" >/dev/null
run_against postgres "$PG_BASE/$db"
psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null || true
