#!/usr/bin/env bash
# End to end: wrk on GET /api/me (or $ROUTE) of the example (fiberauth's middleware,
# a token it has seen) and of bench/jwtware (a minimal Fiber app
# behind jwtware, HS256), on this machine, in alternating rounds.
#
#   bash bench/wrk.sh                  # 3 rounds of (example, jwtware), then (jwtware, example), …
#   ROUNDS=5 DURATION=10s bash bench/wrk.sh
#
# Environment:
#   ROUNDS (3), DURATION (10s), THREADS (2), CONNECTIONS (50): the wrk runs
#   ROUTE (/api/me): /api/me (the caller from the token) or /api/profile
#     (the example reads the user from its store; jwtware answers the email
#     from a claim)
#   STORE (sqlite): the example's -store (sqlite in a temporary file, or memory)
#   GODEBUG_EXAMPLE, GODEBUG_JWTWARE: GODEBUG for each server (e.g. gctrace=1;
#     the traces go to $OUT/example.log and $OUT/jwtware.log)
#   OUT (a temporary directory): where the servers' logs and wrk outputs go
#
# Needs wrk (apt-get install -y wrk) and curl. Both servers run with GOGC
# and GOMEMLIMIT as the environment has them, no prefork, no request logger
# (neither app logs a request), the same Fiber read buffer.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-50}
STORE=${STORE:-sqlite}
ROUTE=${ROUTE:-/api/me}
EXAMPLE_ADDR=127.0.0.1:3000
JWTWARE_ADDR=127.0.0.1:3001

cd "$(dirname "$0")/.."
for cmd in wrk curl go; do
	command -v "$cmd" >/dev/null || { echo "wrk.sh: $cmd not found (wrk: apt-get install -y wrk)" >&2; exit 1; }
done
tmp=$(mktemp -d)
OUT=${OUT:-$tmp}
mkdir -p "$OUT"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') # 64 hex characters
go build -o "$tmp/example" ./example
go build -o "$tmp/jwtware" ./bench/jwtware

wait_up() { # url
	for _ in $(seq 100); do
		curl -fs -o /dev/null "$1" 2>/dev/null && return 0
		# a 4xx means it answers
		code=$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true)
		[[ $code =~ ^4 ]] && return 0
		sleep 0.1
	done
	echo "wrk.sh: $1 did not come up" >&2
	exit 1
}

GODEBUG=${GODEBUG_EXAMPLE:-} "$tmp/example" -addr "$EXAMPLE_ADDR" -store "$STORE" -dsn "$tmp/example.db" \
	-secret "$secret" -admin-email bench@example.com -admin-password 'bench password 12345' \
	>"$OUT/example.log" 2>&1 &
pids+=($!)
GODEBUG=${GODEBUG_JWTWARE:-} "$tmp/jwtware" -addr "$JWTWARE_ADDR" -secret "$secret" >"$OUT/jwtware.log" 2>&1 &
pids+=($!)
wait_up "http://$EXAMPLE_ADDR/healthz"
wait_up "http://$JWTWARE_ADDR/api/me"

login=$(curl -fsS "http://$EXAMPLE_ADDR/auth/login" -H 'Content-Type: application/json' \
	-d '{"email":"bench@example.com","password":"bench password 12345"}')
example_token=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' <<<"$login")
jwtware_token=$("$tmp/jwtware" -secret "$secret" -token)
[[ -n $example_token && -n $jwtware_token ]] || { echo "wrk.sh: no token: $login" >&2; exit 1; }
for side in example jwtware; do
	addr=EXAMPLE_ADDR tok=example_token
	[[ $side == jwtware ]] && addr=JWTWARE_ADDR tok=jwtware_token
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://${!addr}$ROUTE" -H "Authorization: Bearer ${!tok}")
	[[ $code == 200 ]] || { echo "wrk.sh: $side $ROUTE answered $code" >&2; exit 1; }
done

run() { # side round
	local side=$1 addr tok
	addr=EXAMPLE_ADDR tok=example_token
	[[ $side == jwtware ]] && addr=JWTWARE_ADDR tok=jwtware_token
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer ${!tok}" \
		"http://${!addr}$ROUTE" >"$OUT/wrk-$side-$2.txt"
	echo "== $side, round $2"
	cat "$OUT/wrk-$side-$2.txt"
}

# wrk's latency figures in ms
to_ms() {
	awk '{ v=$1; if (v ~ /us$/) { sub(/us$/, "", v); v/=1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v*=1000 } printf "%.3f\n", v }'
}
rps() { awk '/^Requests\/sec:/ { print $2 }' "$OUT/wrk-$1-$2.txt"; }
p99() { awk '$1 == "99%" { print $2 }' "$OUT/wrk-$1-$2.txt" | to_ms; }
p50() { awk '$1 == "50%" { print $2 }' "$OUT/wrk-$1-$2.txt" | to_ms; }
errors() { awk '/Non-2xx|Socket errors/' "$OUT/wrk-$1-$2.txt"; }

echo "# warm-up, 3s each (not counted)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "Authorization: Bearer $example_token" "http://$EXAMPLE_ADDR$ROUTE" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "Authorization: Bearer $jwtware_token" "http://$JWTWARE_ADDR$ROUTE" >/dev/null

echo "# wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, GET $ROUTE, store $STORE, $(nproc) CPUs, $(date -u +%FT%TZ)"
for r in $(seq "$ROUNDS"); do
	if ((r % 2)); then order=(example jwtware); else order=(jwtware example); fi
	for side in "${order[@]}"; do run "$side" "$r"; done
done

echo
echo "# summary"
printf '%-6s %12s %12s %10s %10s %10s %10s %8s %8s\n' round ex-req/s jw-req/s ex-p50 jw-p50 ex-p99 jw-p99 req/s÷ p99÷
for r in $(seq "$ROUNDS"); do
	for side in example jwtware; do
		e=$(errors "$side" "$r")
		[[ -z $e ]] || echo "round $r $side: $e"
	done
	er=$(rps example "$r") jr=$(rps jwtware "$r")
	e50=$(p50 example "$r") j50=$(p50 jwtware "$r")
	e99=$(p99 example "$r") j99=$(p99 jwtware "$r")
	awk -v r="$r" -v er="$er" -v jr="$jr" -v e50="$e50" -v j50="$j50" -v e99="$e99" -v j99="$j99" \
		'BEGIN { printf "%-6s %12.0f %12.0f %9.3fms %9.3fms %9.3fms %9.3fms %8.2f %8.2f\n", r, er, jr, e50, j50, e99, j99, er/jr, e99/j99 }'
done | tee "$tmp/summary"
awk '{ er+=$2; jr+=$3; e99+=$6; j99+=$7; n++ } END { printf "%-6s %12.0f %12.0f %10s %10s %9.3fms %9.3fms %8.2f %8.2f\n", "mean", er/n, jr/n, "", "", e99/n, j99/n, er/jr, e99/j99 }' \
	<(grep -v '^round' "$tmp/summary" | sed 's/ms//g')
echo "(req/s÷: example ÷ jwtware throughput, ≥ 1.3 wanted; p99÷: example ÷ jwtware p99, ≤ 1 wanted)"
