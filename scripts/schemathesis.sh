#!/usr/bin/env bash
# Property-based API testing of the server against its own OpenAPI document (/openapi.json) with
# schemathesis (PyPI, in a virtualenv under target/). Bounded: SCHEMATHESIS_EXAMPLES cases per
# operation (default 25); the check is that no request, valid or not, gets a 5xx. `/Me` is left
# out: it answers 501 on purpose (RFC 7644 §3.11 lets a provider without it say so), which a 5xx
# check cannot tell from a failure; the conformance runner covers it.
# Usage: scripts/schemathesis.sh            (SQLite)
#        SCHEMATHESIS_EXAMPLES=500 scripts/schemathesis.sh   (a longer campaign)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${SCHEMATHESIS_EXAMPLES:-25}"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
venv="${SCHEMATHESIS_VENV:-$target_dir/schemathesis-venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis>=4,<5"
fi
cargo build --locked -q -p scim-provisioning-server
server="$target_dir/debug/scim-server"
work=$(mktemp -d)
token="st-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# No rate limit: the run sends bursts on purpose, and 429 is not what is under test.
SCIM_LISTEN="127.0.0.1:$port" SCIM_DATABASE_URL="sqlite://$work/st.db" SCIM_TOKEN="$token" \
  SCIM_LOG=warn SCIM_RATE_LIMIT__ENABLED=false "$server" serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "server exited" >&2; exit 1; }
  sleep 0.2
done
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error \
  --exclude-path /scim/v2/Me \
  --max-examples "$examples" \
  --seed 13 \
  --no-color || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log"; tail -n 60 "$work/server.log"
fi
exit "$status"
