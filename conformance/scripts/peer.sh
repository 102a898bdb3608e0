#!/usr/bin/env bash
# Runs scim-conformance against scim2-server (the Python reference server) by hand.
# Same pinned version and venv location as tests/peer.rs. Extra arguments go to the
# runner, e.g. `conformance/scripts/peer.sh --only entra --json /tmp/report.json`.
set -euo pipefail
VERSION=0.8.3
TOKEN=cf-peer-token
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/tmp/scim2-server-venv-$VERSION"
if [ ! -f "$VENV/.installed" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --disable-pip-version-check --quiet "scim2-server==$VERSION"
  echo "$VERSION" > "$VENV/.installed"
fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$PORT" --bearer-token "$TOKEN" 2>/dev/null &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
cd "$ROOT"
CARGO_TARGET_DIR="$TARGET" cargo run -q -p scim-conformance -- \
  --base-url "http://127.0.0.1:$PORT/v2/" --token "$TOKEN" "$@"
