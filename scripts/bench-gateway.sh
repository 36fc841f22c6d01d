#!/usr/bin/env bash
# The MCP gateway's cost: the same tools/call load straight at an MCP server (the official
# Python SDK's, from crates/surety-gateway/tests/mcp) and through `surety gateway`.
#
#   scripts/bench-gateway.sh [DURATION] [CONCURRENCY]
#
# With SURETY_BENCH_GATEWAY=embedded the gateway runs inside the Surety server (`surety serve
# --gateway`) and decides in-process; by default it is its own process (`surety gateway`)
# asking Surety over HTTP.
#
# Builds nothing: run `cargo build --release` first. A throw-away Surety (embedded SQLite,
# or PostgreSQL when SURETY_BENCH_DATABASE_URL is set), the upstream and the gateway all run
# on loopback; the report is `surety bench gateway`'s.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${SURETY_BIN:-${CARGO_TARGET_DIR:-target}/release/surety}")"
duration="${1:-10s}"
concurrency="${2:-4}"
mcp=crates/surety-gateway/tests/mcp
work="$(mktemp -d)"
port=$((20000 + RANDOM % 10000))
up_port=$((port + 1))
gw_port=$((port + 2))
base="http://127.0.0.1:$port"
gw="http://127.0.0.1:$gw_port"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

if [[ ! -x "$mcp/.venv/bin/python" ]]; then
  python3 -m venv "$mcp/.venv"
  "$mcp/.venv/bin/python" -m pip install -q -r "$mcp/requirements.txt"
fi

args=(--data-dir "$work/data")
if [[ -n "${SURETY_BENCH_DATABASE_URL:-}" ]]; then args+=(--database-url "$SURETY_BENCH_DATABASE_URL"); fi
"$bin" init "${args[@]}" --issuer "$base" --admin Bench --admin-email bench@example.com >/dev/null
SURETY_LOG_LEVEL=warn SURETY_ISSUER="$base" SURETY_LISTEN="127.0.0.1:$port" \
  "$bin" serve "${args[@]}" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

export SURETY_PROFILE="$work/data/admin-profile.toml"
embedded=false
if [[ "${SURETY_BENCH_GATEWAY:-standalone}" == embedded ]]; then embedded=true; gw="$base"; fi
resource="$gw/crm"
"$bin" agent keygen --out "$work/agent.jwk" >/dev/null 2>&1
agent=$("$bin" agent register bench-agent --public-key "$work/agent.jwk")
grant=$("$bin" grant create --agent "$agent" --scope crm.read_customer --resource "$resource" --expires 1h 2>/dev/null)
"$bin" agent keygen --out "$work/gateway.jwk" >/dev/null 2>&1
rs=$("$bin" resource add --audience "$resource" --public-key "$work/gateway.jwk")
token=$("$bin" token --server "$base" --key "$work/agent.jwk" --agent "$agent" --grant "$grant" \
  | sed -n 's/.*"access_token": "\([^"]*\)".*/\1/p')

"$mcp/.venv/bin/python" "$mcp/upstream.py" --port "$up_port" --log "$work/calls.jsonl" >"$work/upstream.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 100); do grep -q ready "$work/upstream.out" 2>/dev/null && break; sleep 0.1; done

cat >"$work/gateway.toml" <<TOML
listen = "127.0.0.1:$gw_port"
public_url = "$gw"
issuer = "$base"
[[upstream]]
prefix = "/crm"
url = "http://127.0.0.1:$up_port/mcp"
client_id = "$rs"
key_file = "gateway.jwk"
TOML
if $embedded; then
  kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
  SURETY_LOG_LEVEL=warn SURETY_ISSUER="$base" SURETY_LISTEN="127.0.0.1:$port" \
    "$bin" serve "${args[@]}" --gateway "$work/gateway.toml" >"$work/server.log" 2>&1 &
  pids[0]=$!
  for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
else
  SURETY_LOG_LEVEL=warn "$bin" gateway --config "$work/gateway.toml" >"$work/gateway.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "$gw/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
fi

echo "== MCP tools/call, direct and through the gateway ($( $embedded && echo embedded || echo standalone ); $concurrency in flight, $duration each)"
"$bin" bench gateway --upstream "http://127.0.0.1:$up_port/mcp" --gateway "$resource" \
  --token "$token" --key "$work/agent.jwk" --concurrency "$concurrency" --duration "$duration" "${@:3}"
echo "== where the gateway's time went (mean per message, from its /metrics)"
curl -fs "$gw/metrics" | awk '
  /^surety_gateway_(decision|upstream|message)_seconds_(sum|count)/ {
    name=$1; sub(/\{.*/, "", name); sub(/_(sum|count)$/, "", name);
    if ($1 ~ /_sum/) sum[name]+=$2; else count[name]+=$2 }
  END { for (n in sum) if (count[n] > 0) printf "  %-40s %8.0f µs over %d\n", n, sum[n]/count[n]*1e6, count[n] }'
