#!/usr/bin/env bash
# API contract test: the running server against its own OpenAPI document.
#
# Builds `paywall` (incremental), starts `paywall serve --demo` on a free port with its
# database and keys in a temporary folder, runs schemathesis against
# http://127.0.0.1:PORT/openapi.json (status codes, content types, headers and bodies
# as documented; never a 5xx), then checks the server still answers /healthz and stops
# it with SIGTERM, which must exit 0. Exits non-zero on any failure.
#
# Needs schemathesis on PATH or as `python3 -m schemathesis.cli` (.ci/run installs it).
# .ci/api-contract-hooks.py steers part of the generated requests to catalog titles and
# real tokens, so the answers behind 404 and 401 are tested too.
# Settings: API_CONTRACT_EXAMPLES (test cases per operation and phase, default 60),
# API_CONTRACT_SEED (default a fixed seed, so CI is reproducible; "random" for none).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

examples=${API_CONTRACT_EXAMPLES:-60}
seed=${API_CONTRACT_SEED:-20260601}

if command -v schemathesis >/dev/null 2>&1; then
    schemathesis=(schemathesis)
else
    schemathesis=(python3 -m schemathesis.cli)
fi
"${schemathesis[@]}" --version

swift build --product paywall
binary="$repo/.build/debug/paywall"

work=$(mktemp -d "${TMPDIR:-/tmp}/paywall-api-contract.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "api-contract: $*" >&2
    if [ -s "$work/server.err" ]; then
        echo "--- server log (last 40 lines) ---" >&2
        tail -n 40 "$work/server.err" >&2
    fi
    exit 1
}

# The server runs in the temporary folder: its database, keys and nothing else there.
# A Stripe webhook secret, so generated events reach the signature check (400) rather than
# the not-configured answer; the App Store route stays unconfigured (404).
(cd "$work" && PAYWALL_STRIPE_WEBHOOK_SECRETS=whsec_api_contract_0123456789 exec "$binary" serve --demo --host 127.0.0.1 --port 0 \
    --db "$work/paywall.sqlite" --keys "$work/Keys" --policies "$repo/Policies" \
    --log-level warning >"$work/server.out" 2>"$work/server.err") &
server_pid=$!

port=""
for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then fail "the server exited before listening"; fi
    line=$(grep -m1 -o 'listening on http://127\.0\.0\.1:[0-9]*' "$work/server.out" 2>/dev/null || true)
    if [ -n "$line" ]; then port=${line##*:}; break; fi
    sleep 0.2
done
[ -n "$port" ] || fail "the server did not print its 'listening on' line within 60 s"
base="http://127.0.0.1:$port"
echo "api-contract: server pid $server_pid listening on $base"

get_status() {
    python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
except Exception as error:
    print(f"no answer: {error}")
PY
}

# Real tokens for the hooks (.ci/api-contract-hooks.py): two signed-in readers (a member
# of every title, one without membership) and a device.
for account in member@example.com reader@example.com; do
    (cd "$work" && "$binary" token issue --db "$work/paywall.sqlite" --keys "$work/Keys" \
        --account "$account" --ttl 1h --json --actor api-contract 2>>"$work/server.err") |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' >>"$work/tokens" ||
        fail "could not issue a token for $account"
done
python3 - "$base/v1/devices" >>"$work/tokens" <<'PY' || fail "could not get a device token"
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=b"", method="POST")
with urllib.request.urlopen(request, timeout=10) as response:
    print(json.load(response)["deviceToken"])
PY
export API_CONTRACT_TOKENS="$work/tokens"
# Signing out everywhere ends the bearer's access tokens too: that route gets a token of its
# own account, so the run keeps testing the others' 200s with theirs.
(cd "$work" && "$binary" token issue --db "$work/paywall.sqlite" --keys "$work/Keys" \
    --account news@example.com --ttl 1h --json --actor api-contract 2>>"$work/server.err") |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' >"$work/sign-out-token" ||
    fail "could not issue a token for news@example.com"
export API_CONTRACT_SIGN_OUT_TOKEN="$work/sign-out-token"
export SCHEMATHESIS_HOOKS="$repo/.ci/api-contract-hooks.py"

seed_args=()
[ "$seed" = "random" ] || seed_args=(--seed "$seed")

status=0
(cd "$work" && "${schemathesis[@]}" run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method,allow_header_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" "${seed_args[@]}" \
    --workers 1 --request-timeout 10 --generation-database none \
    --report junit,har --report-junit-path "$work/junit.xml" --report-har-path "$work/requests.har" \
    --no-color --warnings off) || status=$?

# What the run exercised: answers per operation and status.
python3 - "$work/requests.har" <<'PY' || true
import collections, json, sys, urllib.parse
entries = json.load(open(sys.argv[1]))["log"]["entries"]
counts = collections.Counter((e["request"]["method"] + " " + urllib.parse.urlsplit(e["request"]["url"]).path, e["response"]["status"]) for e in entries)
for (operation, status), count in sorted(counts.items()):
    print(f"api-contract:   {operation:32} {status} x{count}")
PY

health=$(get_status "$base/healthz")
[ "$health" = "200" ] || fail "GET /healthz answered '$health' after the run (status of schemathesis: $status)"

kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
[ "$server_status" -eq 0 ] || fail "the server exited $server_status on SIGTERM"

# One line for the record: operations that passed and failed, from the JUnit report.
summary=$(python3 - "$work/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
except Exception:
    sys.exit(0)
passed = failed = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is None:
        passed += 1
print(f"{passed} {failed}")
PY
)

if [ "$status" -ne 0 ]; then
    [ -n "$summary" ] && echo "api-contract: ${summary% *} passed, ${summary#* } failed"
    fail "schemathesis found failures (exit $status)"
fi
[ -n "$summary" ] && echo "api-contract: ${summary% *} passed, ${summary#* } failed"
exit 0
