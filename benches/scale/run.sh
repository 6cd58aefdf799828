#!/usr/bin/env bash
# The live exporter at scale: `serve` with N domains (wildcard DNS to one real TLS host, see
# benches/lib/world.sh), after its first sweep: RSS, CPU per probe, /metrics time and bytes
# (gzip and not), status page time and bytes.
#
#   sudo benches/scale/run.sh                 # 10,000 and 100,000 domains
#   sudo SCALE_IDLE_SECONDS=5 benches/scale/run.sh 500   # a smoke run (under a minute)
#   AUTODISCOVER_BIN=path benches/scale/run.sh 10000
#
# Run by hand (as root: nginx binds 127.0.20.x:443), not by CI. Builds the release binary unless
# AUTODISCOVER_BIN is set. Loopback only; every process it starts is stopped by pid at exit;
# every wait is bounded (a sweep gets SCALE_SWEEP_TIMEOUT seconds, default 1200). The
# exporter's log of the last run is left in /tmp/autodiscover-scale-last.log.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/world.sh
source "$HERE/../lib/world.sh"

SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(10000 100000)
LISTEN=127.0.0.1:19280
SWEEP_TIMEOUT=${SCALE_SWEEP_TIMEOUT:-1200}
IDLE_SECONDS=${SCALE_IDLE_SECONDS:-30}
EXPORTER_PID=""

[[ $(id -u) == 0 ]] || { echo "run as root (nginx binds 127.0.20.x:443)" >&2; exit 2; }
world_need
BIN=$(exporter_binary)
W=$(mktemp -d /tmp/autodiscover-scale.XXXXXX)

cleanup() {
    set +e
    stop_pid "$EXPORTER_PID"
    world_stop
    cp "$W/exporter.log" /tmp/autodiscover-scale-last.log 2>/dev/null
    rm -rf "$W"
}
on_exit cleanup

world_start "$W"

probed() { # number of domains with a probe timestamp in /metrics
    curl -s --compressed --max-time 60 "http://$LISTEN/metrics" |
        grep -c '^autodiscover_probe_timestamp_seconds{' || true
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

measure() { # measure LABEL CURL_ARGS...: 5 requests; median time (ms) and bytes on the wire
    local label=$1 _ out times=() bytes=0
    shift
    for _ in 1 2 3 4 5; do
        out=$(curl -s -o /dev/null -w '%{time_total} %{size_download}' --max-time 60 "$@")
        times+=("$(awk -v t="${out% *}" 'BEGIN { printf "%.1f", t * 1000 }')")
        bytes=${out#* }
    done
    printf '  %-44s %8s ms (median of 5; min %s, max %s) %12s bytes\n' "$label" \
        "$(printf '%s\n' "${times[@]}" | median)" \
        "$(printf '%s\n' "${times[@]}" | sort -n | head -n 1)" \
        "$(printf '%s\n' "${times[@]}" | sort -n | tail -n 1)" "$bytes"
}

for n in "${SIZES[@]}"; do
    exporter_config "$n" "$W" 1h
    rm -f "$W/history.db"*
    "$BIN" serve --config.file "$W/exporter.yml" --web.listen-address "$LISTEN" >"$W/exporter.log" 2>&1 &
    EXPORTER_PID=$!
    world_wait 600 0.1 curl -s -o /dev/null --max-time 2 "http://$LISTEN/-/ready" ||
        { echo "exporter not ready (see $W/exporter.log)"; tail "$W/exporter.log"; exit 1; }
    t0=$(date +%s.%N)
    cpu0=$(cpu_seconds "$EXPORTER_PID")
    echo "== $n domains (interval 1h, concurrency 32, $(nproc) cores)"
    done_count=0
    while :; do
        sleep 5
        kill -0 "$EXPORTER_PID" 2>/dev/null ||
            { echo "  the exporter exited (log: /tmp/autodiscover-scale-last.log)"; exit 1; }
        done_count=$(probed)
        elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", b - a }')
        [[ $done_count -ge $n ]] && break
        if ((elapsed > SWEEP_TIMEOUT)); then
            echo "  first sweep not done after ${SWEEP_TIMEOUT}s ($done_count of $n probed)"
            break
        fi
    done
    t1=$(date +%s.%N)
    cpu1=$(cpu_seconds "$EXPORTER_PID")
    sleep 5 # let the background work that follows a sweep (history writes, /metrics cache) settle
    printf '  first sweep: %d of %d domains in %.0f s; exporter CPU %.1f s (user+sys, /proc/PID/stat) = %.2f ms per probe\n' \
        "$done_count" "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" \
        "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$done_count" 'BEGIN { if (n) print (b - a) * 1000 / n; else print 0 }')"
    printf '  RSS after the first sweep: %s MiB (peak %s MiB; /proc/PID/status VmRSS, VmHWM)\n' \
        "$(rss_mib "$EXPORTER_PID")" "$(hwm_mib "$EXPORTER_PID")"
    measure "/metrics (Accept-Encoding: gzip)" -H 'Accept-Encoding: gzip' "http://$LISTEN/metrics"
    measure "/metrics (identity)" "http://$LISTEN/metrics"
    measure "/metrics OpenMetrics (Accept-Encoding: gzip)" -H 'Accept-Encoding: gzip' \
        -H 'Accept: application/openmetrics-text;version=1.0.0' "http://$LISTEN/metrics"
    measure "/ (status page, first page)" "http://$LISTEN/"
    measure "/?format=json (every domain)" "http://$LISTEN/?format=json"
    measure "/domains/d1.scale.test (JSON)" -H 'Accept: application/json' "http://$LISTEN/domains/d1.scale.test"
    cpu2=$(cpu_seconds "$EXPORTER_PID")
    printf '  RSS after the requests: %s MiB; CPU of the requests above: %.2f s\n' \
        "$(rss_mib "$EXPORTER_PID")" "$(awk -v a="$cpu1" -v b="$cpu2" 'BEGIN { print b - a }')"
    idle0=$(cpu_seconds "$EXPORTER_PID")
    sleep "$IDLE_SECONDS"
    idle1=$(cpu_seconds "$EXPORTER_PID")
    printf '  idle CPU after the sweep (no probes due, no scrape): %.2f s in %d s; RSS then %s MiB\n' \
        "$(awk -v a="$idle0" -v b="$idle1" 'BEGIN { print b - a }')" "$IDLE_SECONDS" "$(rss_mib "$EXPORTER_PID")"
    [[ $done_count -ge $n ]] || exit 1
    kill -TERM "$EXPORTER_PID"
    world_wait 150 0.1 bash -c "! kill -0 $EXPORTER_PID" || kill -KILL "$EXPORTER_PID"
    wait "$EXPORTER_PID" 2>/dev/null || true
    EXPORTER_PID=""
done
