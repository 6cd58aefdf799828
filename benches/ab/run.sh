#!/usr/bin/env bash
# CPU per domain check set of two builds of this exporter, interleaved on the benchmark world
# (benches/lib/world.sh), to tell whether a change saves CPU when one run of vs-blackbox cannot:
# the machine's speed drifts by more than most changes save, and here both binaries see the
# same drift, turn by turn.
#
#   sudo benches/ab/run.sh BIN_A BIN_B                      # 8 rounds of 200 domains
#   sudo benches/ab/run.sh BIN_A BIN_B ROUNDS DOMAINS_PER_ROUND CONCURRENCY
#
# Both binaries run `serve` side by side with the same configuration (no configured domain, any
# target allowed), each on its own port. One check set is one GET /probe?target=dN.scale.test.
#   steady state   one unmeasured round over d1..dN on each, then ROUNDS rounds at least 12 s
#                  apart (what probes share lasts 10 s) over the same domains
#   first probes   ROUNDS rounds, each over N domains neither binary has probed
# In every round each binary takes one turn over the same URLs; which goes first alternates
# from round to round. CPU is user+sys from /proc/PID/stat around the binary's own turn.
# Prints each round and the totals, with B's CPU as a fraction of A's.
#
# Run as root (the world binds 127.0.20.x:443 and port 53); CI smoke-runs it with the release
# binary on both sides. Loopback only; every process it starts is stopped by pid at exit;
# bounded time.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_DNS_ADDR=127.0.20.53 BENCH_DNS_PORT=53
# shellcheck source=../lib/world.sh
source "$HERE/../lib/world.sh"

(($# >= 2)) || { echo "usage: $0 BIN_A BIN_B [ROUNDS] [DOMAINS_PER_ROUND] [CONCURRENCY]" >&2; exit 2; }
BIN_A=$(realpath "$1")
BIN_B=$(realpath "$2")
ROUNDS=${3:-8}
PER_ROUND=${4:-200}
CONCURRENCY=${5:-16}
[[ -x $BIN_A && -x $BIN_B ]] || { echo "both binaries must be executable files" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]{0,2}$ && $PER_ROUND =~ ^[1-9][0-9]{0,4}$ && $CONCURRENCY =~ ^[1-9][0-9]{0,2}$ ]] ||
    { echo "ROUNDS (1-999), DOMAINS_PER_ROUND (1-99999) and CONCURRENCY (1-999) are whole numbers" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run as root (nginx binds 127.0.20.x:443, dnsmasq port 53)" >&2; exit 2; }
world_need
W=$(mktemp -d /tmp/autodiscover-ab.XXXXXX)
declare -A PID=([A]="" [B]="") PORT=([A]=19291 [B]=19292)

cleanup() {
    set +e
    stop_pid "${PID[A]}"
    stop_pid "${PID[B]}"
    world_stop
    rm -rf "$W"
}
on_exit cleanup

world_start "$W"
for side in A B; do
    mkdir -p "$W/$side"
    target_config "$W" 20s "$W/$side"
    bin=$BIN_A
    [[ $side == B ]] && bin=$BIN_B
    "$bin" serve --config.file "$W/$side/exporter.yml" --web.listen-address "127.0.0.1:${PORT[$side]}" \
        >"$W/$side/exporter.log" 2>&1 &
    PID[$side]=$!
    world_wait 100 0.1 curl -s -o /dev/null --max-time 2 "http://127.0.0.1:${PORT[$side]}/-/ready" ||
        { echo "binary $side not ready (see $W/$side/exporter.log)"; tail "$W/$side/exporter.log"; exit 1; }
done

make_urls() { # make_urls FIRST LAST: each side's URLs for dFIRST..dLAST
    local side i
    for side in A B; do
        for ((i = $1; i <= $2; i++)); do echo "http://127.0.0.1:${PORT[$side]}/probe?target=d$i.scale.test"; done \
            >"$W/$side/urls"
    done
}

declare -A CPU=() FAIL=()
measure_round() { # measure_round KIND ROUND: one turn of each side, the first alternating
    local kind=$1 round=$2 order side c0 c1 f line
    if ((round % 2)); then order="A B"; else order="B A"; fi
    line=$(printf '  %-6s round %3d:' "$kind" "$round")
    for side in $order; do
        c0=$(cpu_seconds "${PID[$side]}")
        f=$(run_batch "$W/$side/urls" "$CONCURRENCY")
        c1=$(cpu_seconds "${PID[$side]}")
        CPU[$kind.$side]=$(awk -v s="${CPU[$kind.$side]:-0}" -v a="$c0" -v b="$c1" 'BEGIN { print s + b - a }')
        FAIL[$kind.$side]=$((${FAIL[$kind.$side]:-0} + f))
        line+=$(awk -v side="$side" -v a="$c0" -v b="$c1" -v n="$PER_ROUND" 'BEGIN { printf "  %s %.3f ms", side, (b - a) * 1000 / n }')
    done
    echo "$line"
}

echo "== $(nproc) cores; $CONCURRENCY requests at a time; A = $BIN_A, B = $BIN_B"
make_urls 1 "$PER_ROUND"
run_batch "$W/A/urls" "$CONCURRENCY" >/dev/null
run_batch "$W/B/urls" "$CONCURRENCY" >/dev/null
sleep 12
steady_rounds "$ROUNDS" measure_round steady
for ((r = 1; r <= ROUNDS; r++)); do
    make_urls $((r * PER_ROUND + 1)) $(((r + 1) * PER_ROUND))
    measure_round first "$r"
done

sets=$((ROUNDS * PER_ROUND))
for kind in steady first; do
    awk -v k="$kind" -v a="${CPU[$kind.A]}" -v b="${CPU[$kind.B]}" -v n="$sets" -v fa="${FAIL[$kind.A]}" -v fb="${FAIL[$kind.B]}" 'BEGIN {
        printf "== %-6s A %.3f ms, B %.3f ms CPU per domain check set (user+sys, %d sets each; %d and %d non-200 answers): B/A %.3f\n",
            k, a * 1000 / n, b * 1000 / n, n, fa, fb, (a > 0 ? b / a : 0) }'
done
# A comparison with failed probes compares different work.
failed=$((${FAIL[steady.A]} + ${FAIL[steady.B]} + ${FAIL[first.A]} + ${FAIL[first.B]}))
if ((failed > 0)); then
    echo "some probes did not answer 200: the figures above compare different work" >&2
    exit 1
fi
