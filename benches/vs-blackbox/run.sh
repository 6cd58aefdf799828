#!/usr/bin/env bash
# CPU per domain check set: this exporter's /probe against blackbox_exporter's closest equivalent,
# side by side, interleaved in one run, on the benchmark world (benches/lib/world.sh: real
# dnsmasq and nginx on loopback, certificates from .ci/e2e/pki.sh).
#
#   sudo benches/vs-blackbox/run.sh                  # 5 rounds of 200 domains
#   sudo benches/vs-blackbox/run.sh ROUNDS DOMAINS_PER_ROUND CONCURRENCY
#   AUTODISCOVER_BIN=path benches/vs-blackbox/run.sh
#
# One domain check set:
#   this exporter   GET /probe?target=dN.scale.test: Microsoft 365 first (GET, then the POST to the
#                   URL it names for the half of the domains that are "in the cloud"), the four
#                   classic steps (POST https://D, POST https://autodiscover.D, GET
#                   http://autodiscover.D, SRV _autodiscover._tcp.D), the NS and SOA lookups,
#                   diagnosis and metrics
#   blackbox        four probes: http POST https://D/Autodiscover/Autodiscover.xml and
#                   https://autodiscover.D/..., http GET http://autodiscover.D/... (no redirects
#                   followed), dns SRV _autodiscover._tcp.D (one dns module per domain: the dns
#                   prober's query name is fixed per module)
# Two measurements, each in rounds that alternate between the exporters (one exporter's turn,
# then the other's, with the same client concurrency); CPU is user+sys of each process from
# /proc/PID/stat before and after its turn:
#   steady state   the same domains probed again and again, as Prometheus does every interval
#                  (after one unmeasured round): what monitoring N domains costs
#   first probes   domains never probed before: nothing cached or shared from earlier probes
#                  (every Microsoft 365 answer is asked for)
# blackbox_exporter resolves through the system resolver, so it runs in a private mount
# namespace whose /etc/resolv.conf names the world's dnsmasq (127.0.20.53:53); this exporter
# uses the same server.
#
# Run by hand as root (nginx binds 127.0.20.x:443; dnsmasq 127.0.20.53:53), not by CI.
# Installs dnsmasq-base, nginx, openssl, curl, dnsutils and prometheus-blackbox-exporter when
# missing. Loopback only; every process it starts is stopped by pid at exit; bounded time.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_DNS_ADDR=127.0.20.53 BENCH_DNS_PORT=53
# shellcheck source=../lib/world.sh
source "$HERE/../lib/world.sh"

ROUNDS=${1:-5}
PER_ROUND=${2:-200}
CONCURRENCY=${3:-16}
OURS=127.0.0.1:19281
BLACKBOX=127.0.0.1:19115
OURS_PID=""
BLACKBOX_PID=""

[[ $(id -u) == 0 ]] || { echo "run as root (nginx binds 127.0.20.x:443, dnsmasq port 53)" >&2; exit 2; }
world_need
command -v prometheus-blackbox-exporter >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends prometheus-blackbox-exporter ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends prometheus-blackbox-exporter; }
}
BIN=$(exporter_binary)
W=$(mktemp -d /tmp/autodiscover-vs-blackbox.XXXXXX)

cleanup() {
    set +e
    stop_pid "$OURS_PID"
    stop_pid "$BLACKBOX_PID"
    world_stop
    rm -rf "$W"
}
on_exit cleanup

world_start "$W"
total=$(((ROUNDS + 1) * PER_ROUND))

# This exporter: no configured domain (so no background probing), any target allowed.
target_config "$W" 20s
"$BIN" serve --config.file "$W/exporter.yml" --web.listen-address "$OURS" >"$W/exporter.log" 2>&1 &
OURS_PID=$!

# blackbox_exporter: the three http modules and one dns module per domain.
body=$(printf '%s' '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>someone@scale.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>')
{
    cat <<EOF
modules:
  autodiscover_post:
    prober: http
    timeout: 20s
    http:
      method: POST
      headers:
        Content-Type: text/xml
      body: '$body'
      valid_status_codes: [200, 401]
      no_follow_redirects: true
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: $W/pki/root.pem
  autodiscover_http:
    prober: http
    timeout: 20s
    http:
      method: GET
      valid_status_codes: [301, 302, 307, 308]
      no_follow_redirects: true
      preferred_ip_protocol: ip4
EOF
    for ((i = 1; i <= total; i++)); do
        cat <<EOF
  srv_d$i:
    prober: dns
    timeout: 20s
    dns:
      query_name: _autodiscover._tcp.d$i.scale.test
      query_type: SRV
      transport_protocol: udp
      preferred_ip_protocol: ip4
EOF
    done
} >"$W/blackbox.yml"
echo "nameserver $BENCH_DNS_ADDR" >"$W/resolv.conf"
unshare --mount --propagation private sh -c \
    "mount --bind '$W/resolv.conf' /etc/resolv.conf && exec prometheus-blackbox-exporter --config.file='$W/blackbox.yml' --web.listen-address='$BLACKBOX'" \
    >"$W/blackbox.log" 2>&1 &
BLACKBOX_PID=$!

world_wait 100 0.1 curl -s -o /dev/null --max-time 2 "http://$OURS/-/ready" ||
    { echo "autodiscover-exporter not ready (see $W/exporter.log)"; tail "$W/exporter.log"; exit 1; }
world_wait 100 0.1 curl -s -o /dev/null --max-time 2 "http://$BLACKBOX/-/healthy" ||
    { echo "blackbox_exporter not ready"; tail "$W/blackbox.log"; exit 1; }
# Warm-up outside the measurement: one check set each, on a domain outside the measured ones.
curl -s -o /dev/null --max-time 30 "http://$OURS/probe?target=warmup.scale.test"
curl -s -o /dev/null --max-time 30 "http://$BLACKBOX/probe?module=autodiscover_post&target=https://warmup.scale.test/Autodiscover/Autodiscover.xml"
check_url="http://$BLACKBOX/probe?module=autodiscover_post&target=https://d1.scale.test/Autodiscover/Autodiscover.xml"
curl -s "$check_url" | grep -qx 'probe_success 1' || {
    echo "blackbox's POST to https://d1.scale.test does not succeed:"
    curl -s "$check_url&debug=true" | head -n 40
    exit 1
}

elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

make_urls() { # make_urls FIRST LAST: this exporter's and blackbox_exporter's URLs for dFIRST..dLAST
    : >"$W/ours.urls"
    : >"$W/bb.urls"
    local i
    for ((i = $1; i <= $2; i++)); do
        echo "http://$OURS/probe?target=d$i.scale.test" >>"$W/ours.urls"
        {
            echo "http://$BLACKBOX/probe?module=autodiscover_post&target=https://d$i.scale.test/Autodiscover/Autodiscover.xml"
            echo "http://$BLACKBOX/probe?module=autodiscover_post&target=https://autodiscover.d$i.scale.test/Autodiscover/Autodiscover.xml"
            echo "http://$BLACKBOX/probe?module=autodiscover_http&target=http://autodiscover.d$i.scale.test/Autodiscover/Autodiscover.xml"
            echo "http://$BLACKBOX/probe?module=srv_d$i&target=$BENCH_DNS"
        } >>"$W/bb.urls"
    done
}

declare -A CPU=() WALL=() FAIL=()
measure_round() { # measure_round KIND: one turn of each exporter over the URLs, added to KIND
    local kind=$1 c0 c1 t0 t1 f name pid urls
    for name in ours bb; do
        if [[ $name == ours ]]; then pid=$OURS_PID urls=$W/ours.urls; else pid=$BLACKBOX_PID urls=$W/bb.urls; fi
        c0=$(cpu_seconds "$pid") t0=$(date +%s.%N)
        f=$(run_batch "$urls" "$CONCURRENCY")
        t1=$(date +%s.%N) c1=$(cpu_seconds "$pid")
        CPU[$kind.$name]=$(awk -v s="${CPU[$kind.$name]:-0}" -v a="$c0" -v b="$c1" 'BEGIN { print s + b - a }')
        WALL[$kind.$name]=$((${WALL[$kind.$name]:-0} + $(elapsed_ms "$t0" "$t1")))
        FAIL[$kind.$name]=$((${FAIL[$kind.$name]:-0} + f))
    done
}

echo "== $(nproc) cores; $CONCURRENCY requests at a time"
# Steady state, as when Prometheus probes the same domains every interval: one unmeasured round
# over d1..dN, then ROUNDS measured rounds over the same domains. This exporter's Microsoft 365
# answers are cached for an hour (as the SPEC asks), and what several domains' probes ask of
# one host is shared for 10 s; blackbox_exporter keeps nothing between probes.
# A round starts at least 12 s after the previous one (steady_rounds, benches/lib/world.sh).
make_urls 1 "$PER_ROUND"
run_batch "$W/ours.urls" "$CONCURRENCY" >/dev/null
run_batch "$W/bb.urls" "$CONCURRENCY" >/dev/null
sleep 12
steady_rounds "$ROUNDS" measure_round steady
# First probes: domains neither exporter has seen (every Microsoft 365 answer is asked for).
for ((r = 1; r <= ROUNDS; r++)); do
    make_urls $((r * PER_ROUND + 1)) $(((r + 1) * PER_ROUND))
    measure_round cold
done

report() { # report KIND NAME LABEL PID SETS
    local key=$1.$2
    printf '  %-22s %6.2f ms CPU per domain check set (user+sys), %6.1f ms wall per check set at %d at a time, %d non-200 answers\n' \
        "$3" "$(awk -v c="${CPU[$key]}" -v n="$5" 'BEGIN { print c * 1000 / n }')" \
        "$(awk -v w="${WALL[$key]}" -v n="$5" 'BEGIN { print w / n }')" "$CONCURRENCY" "${FAIL[$key]}"
}
ratio() {
    awk -v a="${CPU[$1.bb]}" -v b="${CPU[$1.ours]}" 'BEGIN { if (b > 0) printf "  ratio: blackbox_exporter uses %.1fx the CPU of autodiscover-exporter per domain check set\n", a / b }'
}
sets=$((ROUNDS * PER_ROUND))
echo "== steady state: $ROUNDS rounds over the same $PER_ROUND domains ($sets check sets each)"
report steady ours "autodiscover-exporter" "$OURS_PID" "$sets"
report steady bb "blackbox_exporter" "$BLACKBOX_PID" "$sets"
ratio steady
echo "== first probes: $ROUNDS rounds of $PER_ROUND domains never probed before ($sets check sets each)"
report cold ours "autodiscover-exporter" "$OURS_PID" "$sets"
report cold bb "blackbox_exporter" "$BLACKBOX_PID" "$sets"
ratio cold
printf '== resident memory: autodiscover-exporter %s MiB (peak %s), blackbox_exporter %s MiB (peak %s)\n' \
    "$(rss_mib "$OURS_PID")" "$(hwm_mib "$OURS_PID")" "$(rss_mib "$BLACKBOX_PID")" "$(hwm_mib "$BLACKBOX_PID")"
