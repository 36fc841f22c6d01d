#!/usr/bin/env bash
# How soon a revoked token is refused: by introspection at another node, and by a verifier
# that follows the security event stream (`surety bench revocation`).
#
#   scripts/bench-revocation.sh [ROUNDS] [POLL]
#
# With SURETY_BENCH_DATABASE_URL (PostgreSQL), two nodes share it and introspection is asked
# at the second one; otherwise one node on SQLite. Builds nothing: run `cargo build
# --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${SURETY_BIN:-${CARGO_TARGET_DIR:-target}/release/surety}")"
rounds="${1:-100}"
poll="${2:-20ms}"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 10000))
base="http://127.0.0.1:$port"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

args=(--data-dir "$work/one")
if [[ -n "${SURETY_BENCH_DATABASE_URL:-}" ]]; then args+=(--database-url "$SURETY_BENCH_DATABASE_URL"); fi
"$bin" init "${args[@]}" --issuer "$base" --admin Bench --admin-email bench@example.com >/dev/null
serve() { # data-dir port
  local a=(--data-dir "$1")
  if [[ -n "${SURETY_BENCH_DATABASE_URL:-}" ]]; then a+=(--database-url "$SURETY_BENCH_DATABASE_URL"); fi
  SURETY_LOG_LEVEL=warn SURETY_ISSUER="$base" SURETY_LISTEN="127.0.0.1:$2" \
    SURETY_SIGNING_KEK_FILE="$work/one/signing-kek" "$bin" serve "${a[@]}" >"$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
}
serve "$work/one" "$port"
node="$base"
if [[ -n "${SURETY_BENCH_DATABASE_URL:-}" ]]; then
  mkdir -p "$work/two"
  serve "$work/two" "$((port + 1))"
  node="http://127.0.0.1:$((port + 1))"
fi
echo "== revocation propagation ($rounds rounds; introspection at $node; verifier polls every $poll)"
"$bin" --profile "$work/one/admin-profile.toml" bench revocation --node "$node" --rounds "$rounds" --poll "$poll"
