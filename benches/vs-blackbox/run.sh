#!/usr/bin/env bash
# CPU per domain check set: this exporter's /probe against blackbox_exporter's closest equivalent,
# side by side, interleaved in one run, on the benchmark world (benches/lib/world.sh: real
# dnsmasq and nginx on loopback, certificates from .ci/e2e/pki.sh).
#
#   sudo benches/vs-blackbox/run.sh                  # 5 rounds of 200 domains each
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
# Each round probes fresh domains (nothing cached from an earlier round), first with one
# exporter, then with the other, with the same client concurrency; CPU is user+sys of each
# process from /proc/PID/stat before and after its turn. blackbox_exporter resolves through
# the system resolver, so it runs in a private mount namespace whose /etc/resolv.conf names
# the world's dnsmasq (127.0.20.53:53); this exporter uses the same server.
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
if [[ -n ${AUTODISCOVER_BIN:-} ]]; then
    BIN=$(realpath "$AUTODISCOVER_BIN")
else
    (cd "$BENCH_ROOT" && cargo build --release --locked -q)
    BIN=$BENCH_ROOT/target/release/autodiscover-exporter
fi
W=$(mktemp -d /tmp/autodiscover-vs-blackbox.XXXXXX)

stop_pid() {
    local pid=$1
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    world_wait 150 0.1 bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    set +e
    stop_pid "$OURS_PID"
    stop_pid "$BLACKBOX_PID"
    world_stop
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

world_start "$W"
total=$((ROUNDS * PER_ROUND))

# This exporter: no configured domain (so no background probing), any target allowed.
cat >"$W/exporter.yml" <<EOF
defaults:
  timeout: 20s
resolver:
  nameservers: ["$BENCH_DNS"]
tls:
  ca_file: $W/pki/root.pem
microsoft365:
  max_queries_per_second: 1000
allow_any_target: true
storage:
  path: $W/history.db
domains: []
EOF
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
run_batch() { # run_batch URLFILE: GET every URL, CONCURRENCY at a time; count the failures
    xargs -P "$CONCURRENCY" -n 1 curl -s -o /dev/null --max-time 60 -w '%{http_code}\n' <"$1" |
        grep -vc '^200$' || true
}

ours_cpu=0 bb_cpu=0 ours_wall=0 bb_wall=0 ours_fail=0 bb_fail=0
echo "== $ROUNDS rounds of $PER_ROUND domains, $CONCURRENCY requests at a time, $(nproc) cores"
for ((r = 0; r < ROUNDS; r++)); do
    : >"$W/ours.urls"
    : >"$W/bb.urls"
    for ((i = r * PER_ROUND + 1; i <= (r + 1) * PER_ROUND; i++)); do
        echo "http://$OURS/probe?target=d$i.scale.test" >>"$W/ours.urls"
        {
            echo "http://$BLACKBOX/probe?module=autodiscover_post&target=https://d$i.scale.test/Autodiscover/Autodiscover.xml"
            echo "http://$BLACKBOX/probe?module=autodiscover_post&target=https://autodiscover.d$i.scale.test/Autodiscover/Autodiscover.xml"
            echo "http://$BLACKBOX/probe?module=autodiscover_http&target=http://autodiscover.d$i.scale.test/Autodiscover/Autodiscover.xml"
            echo "http://$BLACKBOX/probe?module=srv_d$i&target=$BENCH_DNS"
        } >>"$W/bb.urls"
    done
    c0=$(cpu_seconds "$OURS_PID") t0=$(date +%s.%N)
    f=$(run_batch "$W/ours.urls")
    t1=$(date +%s.%N) c1=$(cpu_seconds "$OURS_PID")
    ours_cpu=$(awk -v s="$ours_cpu" -v a="$c0" -v b="$c1" 'BEGIN { print s + b - a }')
    ours_wall=$((ours_wall + $(elapsed_ms "$t0" "$t1")))
    ours_fail=$((ours_fail + f))
    c0=$(cpu_seconds "$BLACKBOX_PID") t0=$(date +%s.%N)
    f=$(run_batch "$W/bb.urls")
    t1=$(date +%s.%N) c1=$(cpu_seconds "$BLACKBOX_PID")
    bb_cpu=$(awk -v s="$bb_cpu" -v a="$c0" -v b="$c1" 'BEGIN { print s + b - a }')
    bb_wall=$((bb_wall + $(elapsed_ms "$t0" "$t1")))
    bb_fail=$((bb_fail + f))
    printf '  round %d: autodiscover-exporter %.2f s CPU so far, blackbox_exporter %.2f s\n' "$((r + 1))" "$ours_cpu" "$bb_cpu"
done

report() { # report NAME CPU WALL_MS FAILED PID
    printf '  %-22s %6.2f ms CPU per domain check set (user+sys), %6.1f ms wall per check set at %d at a time, RSS %s MiB (peak %s MiB), %d non-200 answers\n' \
        "$1" "$(awk -v c="$2" -v n="$total" 'BEGIN { print c * 1000 / n }')" \
        "$(awk -v w="$3" -v n="$total" 'BEGIN { print w / n }')" "$CONCURRENCY" \
        "$(rss_mib "$5")" "$(hwm_mib "$5")" "$4"
}
echo "== $total domain check sets each"
report "autodiscover-exporter" "$ours_cpu" "$ours_wall" "$ours_fail" "$OURS_PID"
report "blackbox_exporter" "$bb_cpu" "$bb_wall" "$bb_fail" "$BLACKBOX_PID"
awk -v a="$bb_cpu" -v b="$ours_cpu" 'BEGIN { if (b > 0) printf "  ratio: blackbox_exporter uses %.1fx the CPU of autodiscover-exporter per domain check set\n", a / b }'
