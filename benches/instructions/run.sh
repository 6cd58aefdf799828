#!/usr/bin/env bash
# User-space instructions per domain check set of the live `serve`, counted by valgrind's
# callgrind on the benchmark world (benches/lib/world.sh): reproducible to about 0.1 % from run
# to run, where CPU time moves by ±15 % with the machine. It leaves out the kernel, and the CPU
# valgrind emulates takes slower crypto paths than the real one, so it compares binaries; it does
# not replace benches/vs-blackbox/run.sh.
#
#   sudo benches/instructions/run.sh                  # 100 domains
#   sudo benches/instructions/run.sh DOMAINS
#   AUTODISCOVER_BIN=path sudo benches/instructions/run.sh
#
# One round over dN.scale.test (unmeasured), a pause of 12 s (what probes share lasts 10 s), the
# same domains again (steady state), then as many domains never probed (first probes). Counters
# are zeroed and dumped around each measured round with callgrind_control.
# Run by hand as root (the world binds 127.0.20.x:443 and port 53), not by CI; installs valgrind
# and the world's packages when missing. Loopback only; every process is stopped by pid.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_DNS_ADDR=127.0.20.53 BENCH_DNS_PORT=53
# shellcheck source=../lib/world.sh
source "$HERE/../lib/world.sh"

PER=${1:-100}
CONCURRENCY=8
OURS=127.0.0.1:19283
OURS_PID=""

[[ $(id -u) == 0 ]] || { echo "run as root (nginx binds 127.0.20.x:443, dnsmasq port 53)" >&2; exit 2; }
world_need
command -v valgrind >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends valgrind ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends valgrind; }
}
BIN=$(exporter_binary)
W=$(mktemp -d /tmp/autodiscover-instructions.XXXXXX)

cleanup() {
    set +e
    stop_pid "$OURS_PID" 300
    world_stop
    rm -rf "$W"
}
on_exit cleanup

world_start "$W"
target_config "$W" 60s
valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.%p" \
    "$BIN" serve --config.file "$W/exporter.yml" --web.listen-address "$OURS" >"$W/exporter.log" 2>&1 &
OURS_PID=$!
world_wait 600 0.2 curl -s -o /dev/null --max-time 5 "http://$OURS/-/ready" ||
    { echo "autodiscover-exporter not ready under valgrind (see $W/exporter.log)"; tail "$W/exporter.log"; exit 1; }

urls() { # urls FIRST LAST
    local i
    for ((i = $1; i <= $2; i++)); do echo "http://$OURS/probe?target=d$i.scale.test"; done
}
DUMPS=0
measure() { # measure LABEL URLFILE: instructions per check set over one round
    local failed dump
    callgrind_control -z "$OURS_PID" >/dev/null 2>&1
    failed=$(run_batch "$2" "$CONCURRENCY" 300)
    callgrind_control -d "$OURS_PID" >/dev/null 2>&1
    DUMPS=$((DUMPS + 1))
    dump=$W/callgrind.$OURS_PID.$DUMPS
    awk -v label="$1" -v n="$PER" -v f="$failed" '/^summary:/ {
        printf "  %-14s %9.0f instructions per domain check set (user space), %d non-200 answers\n", label, $2 / n, f }' "$dump"
}

urls 1 "$PER" >"$W/steady.urls"
urls 100001 $((100000 + PER)) >"$W/first.urls"
run_batch "$W/steady.urls" "$CONCURRENCY" 300 >/dev/null
sleep 12
echo "== $PER domains, callgrind"
measure "steady state" "$W/steady.urls"
measure "first probes" "$W/first.urls"
