#!/usr/bin/env bash
# Identity chaining between two organisations: two throw-away Surety servers on loopback
# (embedded SQLite, `dev` mode so that each may fetch the other's metadata over http), then
# `surety bench federation`: chained token latency (authorization grant at home + redemption
# at the peer) and how long after a revocation at home the peer refuses the agent.
#
#   scripts/bench-federation.sh [ROUNDS] [REVOCATIONS] [POLL_INTERVAL]
#
# Builds nothing: run `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${SURETY_BIN:-${CARGO_TARGET_DIR:-target}/release/surety}")"
rounds="${1:-500}"
revocations="${2:-20}"
poll="${3:-2s}"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 10000))
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

start() { # name port
  local base="http://127.0.0.1:$2"
  "$bin" init --data-dir "$work/$1" --issuer "$base" --admin "Admin $1" --admin-email "admin@$1.example" >/dev/null
  SURETY_LOG_LEVEL=warn SURETY_DEV=true SURETY_FEDERATION_POLL_INTERVAL="$poll" SURETY_ISSUER="$base" \
    SURETY_LISTEN="127.0.0.1:$2" "$bin" serve --data-dir "$work/$1" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
}
start home "$port"
start peer "$((port + 1))"
echo "== identity chaining, two organisations on loopback ($rounds rounds, $revocations revocations, peer polls every $poll)"
"$bin" --profile "$work/peer/admin-profile.toml" bench federation \
  --home-profile "$work/home/admin-profile.toml" --rounds "$rounds" --revocations "$revocations" --spread "$poll"
