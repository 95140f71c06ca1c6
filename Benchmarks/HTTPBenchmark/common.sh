# Sourced by run.sh and postgres.sh: release builds, the benchmark's data prepared in a
# scratch folder (removed on exit, with every server the script started), and a table row
# from wrk's output.

swift build -c release --product paywall > /dev/null
swift build -c release --product paywall-http-bench > /dev/null
BIN=.build/release
DIR=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]:-}"; do kill "$pid" 2> /dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
"$BIN/paywall-http-bench" prepare "$DIR" > /dev/null

wait_port() { for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# row NAME WRK-OUTPUT [MORE COLUMNS…]: | name | requests/s | p50 | p99 | errors | more… |
row() {
  local name="$1" out="$2" rps p50 p99 non2xx sockets
  shift 2
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  sockets=$(echo "$out" | awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}')
  LAST_RPS="${rps:-0}"  # for the ratios a script prints after its table
  printf '| %s | %s | %s | %s | %s |' "$name" "${rps:-?}" "${p50:-?}" "${p99:-?}" "$(( ${non2xx:-0} + ${sockets:-0} ))"
  for column in "$@"; do printf ' %s |' "$column"; done
  printf '\n'
}
