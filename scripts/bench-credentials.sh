#!/usr/bin/env bash
# Token exchange and introspection under load, against a throw-away release server.
#
#   scripts/bench-credentials.sh [DURATION] [CONCURRENCY]
#
# Builds nothing: run `cargo build --release` first. Uses embedded SQLite in a temporary
# data directory, or PostgreSQL when SURETY_BENCH_DATABASE_URL is set. Prints the crypto
# baseline, then `surety bench token-exchange` and `surety bench introspect` reports.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${SURETY_BIN:-${CARGO_TARGET_DIR:-target}/release/surety}"
duration="${1:-10s}"
concurrency="${2:-16}"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
server=""
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

args=(--data-dir "$work/data")
if [[ -n "${SURETY_BENCH_DATABASE_URL:-}" ]]; then args+=(--database-url "$SURETY_BENCH_DATABASE_URL"); fi
"$bin" init "${args[@]}" --issuer "$base" --admin Bench --admin-email bench@example.com >/dev/null
SURETY_LOG_LEVEL=warn SURETY_ISSUER="$base" SURETY_LISTEN="127.0.0.1:$port" \
  "$bin" serve "${args[@]}" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

export SURETY_PROFILE="$work/data/admin-profile.toml"
"$bin" agent keygen --out "$work/agent.jwk" >/dev/null 2>&1
agent=$("$bin" agent register bench-agent --public-key "$work/agent.jwk")
grant=$("$bin" grant create --agent "$agent" --scope crm.read_customer --resource https://crm.example --expires 1h 2>/dev/null)
"$bin" agent keygen --out "$work/rs.jwk" >/dev/null 2>&1
rs=$("$bin" resource add --audience https://crm.example --public-key "$work/rs.jwk")
token=$("$bin" token --server "$base" --key "$work/agent.jwk" --agent "$agent" --grant "$grant" \
  | sed -n 's/.*"access_token": "\([^"]*\)".*/\1/p')

echo "== crypto baseline"
"$bin" bench crypto
echo "== token exchange ($concurrency in flight, $duration)"
"$bin" bench token-exchange --server "$base" --client-id "$agent" --key "$work/agent.jwk" \
  --grant "$grant" --concurrency "$concurrency" --duration "$duration"
echo "== decisions, AuthZEN ($concurrency in flight, $duration)"
"$bin" bench decide --server "$base" --client-id "$rs" --key "$work/rs.jwk" --audience https://crm.example \
  --token "$token" --agent "$agent" --action crm.read_customer --concurrency "$concurrency" --duration "$duration"
echo "== introspection ($concurrency in flight, $duration)"
"$bin" bench introspect --server "$base" --client-id "$rs" --key "$work/rs.jwk" --token "$token" \
  --concurrency "$concurrency" --duration "$duration"
