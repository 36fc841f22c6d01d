#!/usr/bin/env bash
# Step-up approvals: how soon an approved agent holds its approval token (poll mode and ping
# mode), and the server's memory while many requests wait — against a throw-away release
# server.
#
#   scripts/bench-approvals.sh [ROUNDS] [PENDING]
#
# Builds nothing: run `cargo build --release` first. Embedded SQLite in a temporary data
# directory, or PostgreSQL when SURETY_BENCH_DATABASE_URL is set. The server runs in `dev`
# mode so that the bench's loopback ping receiver may be registered, with a 1 s polling
# interval. The PENDING requests are spread over agents, 20 each (the default cap).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${SURETY_BIN:-${CARGO_TARGET_DIR:-target}/release/surety}"
rounds="${1:-10}"
pending="${2:-100000}"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
server=""
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

args=(--data-dir "$work/data")
if [[ -n "${SURETY_BENCH_DATABASE_URL:-}" ]]; then args+=(--database-url "$SURETY_BENCH_DATABASE_URL"); fi
"$bin" init "${args[@]}" --issuer "$base" --admin Bench --admin-email bench@example.com >/dev/null
SURETY_LOG_LEVEL=warn SURETY_ISSUER="$base" SURETY_LISTEN="127.0.0.1:$port" SURETY_DEV=true \
  SURETY_CIBA_INTERVAL=1s \
  "$bin" serve "${args[@]}" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
export SURETY_PROFILE="$work/data/admin-profile.toml"

echo "== poll mode ($rounds rounds)"
"$bin" bench approvals --mode poll --rounds "$rounds"
echo "== ping mode ($rounds rounds), then $pending requests left waiting"
"$bin" bench approvals --mode ping --rounds "$rounds" --pending "$pending" --pid "$server"
