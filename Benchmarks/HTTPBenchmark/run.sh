#!/usr/bin/env bash
# The HTTP API under wrk, beside a bare Hummingbird route measured in the same run.
#   Benchmarks/HTTPBenchmark/run.sh [seconds per scenario, default 10]
# Needs wrk (Debian: apt-get install wrk) and openssl. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH="${1:-10}"
CONNECTIONS=64
THREADS=2
command -v wrk > /dev/null || { echo "run.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }

source Benchmarks/HTTPBenchmark/common.sh
swift build -c release --product paywall-bench > /dev/null

# The server's CPU time (user + system, in clock ticks) so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
# name mode tokens port seconds [shared: the server also serves another client meanwhile,
# so its CPU per request means nothing and is not printed]
scenario() {
  local out before after requests cpu
  before=$(cpu_ticks)
  out=$(MODE="$2" TOKENS="$3" THREADS=$THREADS wrk -t$THREADS -c$CONNECTIONS -d"$5"s --latency -s Benchmarks/HTTPBenchmark/wrk.lua "http://127.0.0.1:$4" 2>&1)
  after=$(cpu_ticks)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  # CPU microseconds the server spent per request: steadier than requests/s on a shared
  # machine (wrk and other work take the rest of the cores).
  cpu=$(awk -v t=$((after - before)) -v n="${requests:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "?" }')
  [ "${6:-}" = shared ] && cpu="–"
  LAST_REQUESTS="${requests:-0}"
  row "$1" "$out" "$cpu"
}
# A counter of the server's /metrics (0 when absent).
metric() { curl -s "http://127.0.0.1:18182/metrics" | awk -v name="$1" '$1 == name {v = $2} END {printf "%d", v}'; }

echo "| scenario ($CONNECTIONS connections, $THREADS wrk threads, ${SECONDS_EACH}s) | requests/s | p50 | p99 | errors | server CPU µs/request |"
echo "|---|---:|---:|---:|---:|---:|"

"$BIN/paywall-http-bench" bare 18181 > /dev/null 2>&1 & PIDS+=($!)
SERVER_PID=${PIDS[-1]}
wait_port 18181
scenario "bare Hummingbird route (reference)" bare "" 18181/bare "$SECONDS_EACH"
BARE_RPS=$LAST_RPS
scenario "bare route reading the request body" bare-body "" 18181/bare-body "$SECONDS_EACH"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2> /dev/null || true

"$BIN/paywall" serve --port 18182 --db "$DIR/paywall.sqlite" --keys "$DIR/Keys" --policies "$DIR/policies" --log-level error > /dev/null & PIDS+=($!)
wait_port 18182
SERVER=${PIDS[-1]}
SERVER_PID=$SERVER
# Warm-up, not measured: each of the 10,000 member tokens verified once (the cache then
# holds them, as it does for a reader's repeated checks), connections and statements made.
MODE=member TOKENS="$DIR/member-tokens.txt" THREADS=$THREADS wrk -t$THREADS -c$CONNECTIONS -d3s -s Benchmarks/HTTPBenchmark/wrk.lua "http://127.0.0.1:18182/v1/access" > /dev/null 2>&1
scenario "POST /v1/access, members (10,000 tokens)" member "$DIR/member-tokens.txt" 18182/v1/access "$SECONDS_EACH"
MEMBER_RPS=$LAST_RPS
scenario "POST /v1/access, anonymous devices" device "$DIR/device-tokens.txt" 18182/v1/access "$SECONDS_EACH"
scenario "POST /v1/access, metered (each records a read, FULL)" metered "$DIR/reader-tokens.txt" 18182/v1/access "$SECONDS_EACH"
METERED_RPS=$LAST_RPS
METERED_REQUESTS=$LAST_REQUESTS
verified_before=$(metric 'paywall_token_verifications_total{result="valid"}')
scenario "POST /v1/access, a cold token each time" cold "$DIR/cold-tokens.txt" 18182/v1/access 5
COLD_RPS=$LAST_RPS
COLD_VERIFIED=$(( $(metric 'paywall_token_verifications_total{result="valid"}') - verified_before ))
COLD_REQUESTS=$LAST_REQUESTS

# Member checks while a second client signs in continuously: real accounts, passwords
# hashed at OWASP's scrypt cost (the server runs with the production default), more
# connections than the hashing bound so sign-ins queue. The same checks alone just before,
# for the comparison. The sign-in client starts a second before and ends a second after.
SIGNIN_CONNECTIONS=4
scenario "POST /v1/access, members, alone (reference for the next row)" member "$DIR/member-tokens.txt" 18182/v1/access "$SECONDS_EACH"
MODE=signin TOKENS="$DIR/signin-accounts.txt" THREADS=1 wrk -t1 -c$SIGNIN_CONNECTIONS -d$((SECONDS_EACH + 2))s --timeout 30s --latency \
  -s Benchmarks/HTTPBenchmark/wrk.lua "http://127.0.0.1:18182/v1/sessions" > "$DIR/signin.txt" 2>&1 & PIDS+=($!)
SIGNIN=${PIDS[-1]}
sleep 1
scenario "POST /v1/access, members, while a second client signs in" member "$DIR/member-tokens.txt" 18182/v1/access "$SECONDS_EACH" shared
wait "$SIGNIN" || true
row "POST /v1/sessions, sign-ins meanwhile (OWASP scrypt, $SIGNIN_CONNECTIONS connections, $((SECONDS_EACH + 2))s)" "$(cat "$DIR/signin.txt")" "–"
kill -TERM "$SERVER"; wait "$SERVER" 2> /dev/null || true

# The cold goal's reference: `openssl speed` as the issue names it (one process, so one
# core), and on both cores (-multi 2). Both are printed; see BENCHMARKS.md for why the
# goal is read against the first (against the second it asks a check that verifies a
# signature to outrun a member check that verifies none).
verify_one=$(openssl speed -seconds 5 ecdsap256 2> /dev/null | awk '/256 bits ecdsa/ {v=$NF} END {print v}')
verify=$(openssl speed -seconds 5 -multi 2 ecdsap256 2> /dev/null | awk '/256 bits ecdsa/ {v=$NF} END {print v}')
echo
echo "openssl speed ecdsap256 (one process, as named): ${verify_one:-?} verifies/s"
echo "openssl speed -multi 2 ecdsap256 (both cores): ${verify:-?} verifies/s"
sessions=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM sessions').fetchone()[0])" "$DIR/paywall.sqlite" 2> /dev/null || echo "?")
reads=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM reads').fetchone()[0])" "$DIR/paywall.sqlite" 2> /dev/null || echo "?")
echo "reads recorded by the metered scenario: $reads, for $METERED_REQUESTS metered checks answered (each must record one)"
echo "signatures verified in the cold scenario: $COLD_VERIFIED, for $COLD_REQUESTS checks answered (each must verify one)"
# A check of the benchmark itself: until the eighth session every wrk thread sent the same
# requests, and these two rows measured re-reads and cached tokens half the time.
if [ "$reads" != "?" ] && [ "$reads" -lt "$METERED_REQUESTS" ]; then echo "WARNING: fewer reads recorded than metered checks answered: the metered row is not what it says" >&2; fi
if [ "$COLD_VERIFIED" -lt "$COLD_REQUESTS" ]; then echo "WARNING: fewer signatures verified than cold checks answered: the cold row is not what it says" >&2; fi
echo "sessions in the store (one per sign-in): $sessions"

# The metered goal's reference, on the same disk in the same run: one durable transaction
# per read (paywall-bench's "record a read": Store.recordRead, synchronous = FULL, median of
# three rounds of 2,000). The fsync it waits for moves from day to day on shared machines.
one_transaction=$("$BIN/paywall-bench" --sizes 1000 --ops 2000 --rounds 3 2> /dev/null | awk -F'|' '/record a read/ {gsub(/ /, "", $4); print $4}')
echo "one durable transaction per read (paywall-bench, same disk): ${one_transaction:-?} reads/s"
echo
# a ÷ b, as a percentage or as a multiple ("?" when either is missing)
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f%%", 100 * a / b; else print "?" }'; }
multiple() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f×", a / b; else print "?" }'; }
echo "members ÷ bare route: $(percent "$MEMBER_RPS" "$BARE_RPS") (goal: at least 50%)"
echo "cold tokens ÷ openssl speed (one process): $(percent "$COLD_RPS" "$verify_one") (goal: at least 80%)"
echo "cold tokens ÷ openssl speed -multi 2: $(percent "$COLD_RPS" "$verify")"
echo "metered ÷ one transaction per read, same run: $(multiple "$METERED_RPS" "$one_transaction") (goal: at least 4×)"
# The figure the issue names: the one-transaction rate recorded for issue 2 (2026-11-25).
echo "metered ÷ the rate recorded in BENCHMARKS.md (4,217/s): $(multiple "$METERED_RPS" 4217)"
