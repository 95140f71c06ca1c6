#!/usr/bin/env bash
# One scenario of POST /v1/access against a release server, with the server's CPU per
# check split by thread and the whole machine's idle, iowait and softirq beside it: where a
# check's CPU goes (BENCHMARKS.md, "eighteenth session"). Quicker than run.sh, for A/B pairs.
#   Benchmarks/HTTPBenchmark/per-thread.sh [seconds, default 8]
# Environment: SCENARIO=metered|member|device|cold (default metered), CONNECTIONS (64),
# BINARY (default .build/release/paywall: pass another build to compare two),
# SERVER_ENV (e.g. PAYWALL_BENCH_X=1, given to the server only).
# Prints one line: requests/s, p99, errors, µs of server CPU a check per thread and in all,
# and the machine's shares over the middle of the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH="${1:-8}"
SCENARIO="${SCENARIO:-metered}"
command -v wrk > /dev/null || { echo "per-thread.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
source Benchmarks/HTTPBenchmark/common.sh
BINARY="${BINARY:-$BIN/paywall}"
case "$SCENARIO" in
    metered) TOKENS="$DIR/reader-tokens.txt" ;;
    member) TOKENS="$DIR/member-tokens.txt" ;;
    device) TOKENS="$DIR/device-tokens.txt" ;;
    cold) TOKENS="$DIR/cold-tokens.txt" ;;
    *) echo "per-thread.sh: SCENARIO must be metered, member, device or cold" >&2; exit 64 ;;
esac
PORT=18190
env ${SERVER_ENV:-} "$BINARY" serve --port $PORT --db "$DIR/paywall.sqlite" --keys "$DIR/Keys" --policies "$DIR/policies" --log-level error > /dev/null & PIDS+=($!)
SERVER_PID=${PIDS[-1]}
wait_port $PORT
# Warm-up, not measured: the member tokens verified once, connections and statements made.
MODE=member TOKENS="$DIR/member-tokens.txt" THREADS=2 wrk -t2 -c64 -d2s -s Benchmarks/HTTPBenchmark/wrk.lua "http://127.0.0.1:$PORT/v1/access" > /dev/null 2>&1
# Each thread's CPU ticks (user + system), by name and position.
snapshot() { for task in /proc/$SERVER_PID/task/*; do echo "$(tr ' ' '_' < "$task/comm") $(awk '{print $14 + $15}' "$task/stat")"; done | awk '{print $1 "_" NR, $2}' | sort; }
# A thread started during the run (the group-commit writer, at the first metered read)
# counts from zero.
snapshot > "$DIR/before"
# The machine's counters over the middle of the run.
( sleep $(( SECONDS_EACH / 4 )); head -1 /proc/stat > "$DIR/stat-a"; sleep $(( SECONDS_EACH / 2 )); head -1 /proc/stat > "$DIR/stat-b" ) & STAT_PID=$!
out=$(MODE=$SCENARIO TOKENS="$TOKENS" THREADS=2 wrk -t2 -c"${CONNECTIONS:-64}" -d"${SECONDS_EACH}"s --latency -s Benchmarks/HTTPBenchmark/wrk.lua "http://127.0.0.1:$PORT/v1/access" 2>&1)
snapshot > "$DIR/after"
wait "$STAT_PID" || true
requests=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
threads=$(join -a 2 -e 0 -o 0,1.2,2.2 "$DIR/before" "$DIR/after" | awk -v n="$requests" -v hz="$(getconf CLK_TCK)" \
    '{d = $3 - $2; total += d; if (d > 0) printf "%s=%.0f ", $1, d / hz * 1e6 / n} END {printf "all=%.0f", total / hz * 1e6 / n}')
machine=$(paste "$DIR/stat-a" "$DIR/stat-b" | awk '{n = (NF - 2) / 2; for (i = 2; i <= 9; i++) {d[i] = $(i + n + 1) - $i; t += d[i]}
    printf "idle %.1f%% iowait %.1f%% softirq %.1f%%", 100 * d[5] / t, 100 * d[6] / t, 100 * d[8] / t}')
echo "$SCENARIO: ${rps:-?}/s p99 ${p99:-?} errors ${errors:-0} | server µs a check: $threads | machine: $machine"
