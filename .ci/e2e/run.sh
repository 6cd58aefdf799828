#!/usr/bin/env bash
# End-to-end suite: the release binary against real Debian servers on loopback.
#
#   dnsmasq (127.0.0.1:5353)      the DNS world of dns/world.conf (zones e2e.test, office365.com, outlook.com)
#   nginx (127.0.10.x:80/443)     Exchange, web sites, redirectors, a simulated Microsoft 365 and an
#                                 AIA repository, certificates from pki.sh
#   autodiscover-exporter         `check`, `check-config`, `serve` (127.0.0.1:10195, 19196-19199), `demo`
#   prometheus (127.0.0.1:19090)  scrapes the exporter, evaluates alerts/*.yml and every
#                                 dashboard query
#
# Usage: .ci/e2e/run.sh                    (as root; installs its Debian packages when missing)
#   AUTODISCOVER_BIN=path   use this binary instead of `cargo build --release --locked`
#   E2E_INFRA_ONLY=1        bring up the servers, check them, tear them down (no binary needed)
#   E2E_KEEP=1              keep the temp dir (logs, certificates, configs) even on success
#
# Prints one PASS/FAIL line per check and a summary; exits non-zero on any failure.
# Every process it starts is stopped by pid on exit; only loopback addresses are used.
set -euo pipefail

E2E=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E/../.." && pwd)
INFRA_ONLY=${E2E_INFRA_ONLY:-0}
KEEP=${E2E_KEEP:-0}
PY=/usr/bin/python3

DNS=127.0.0.1:5353
DEAD_DNS=127.0.0.1:5354          # nothing listens there: "no resolver reachable"
EXPORTER=127.0.0.1:10195
SHARD1=127.0.0.1:19196
SHARD2=127.0.0.1:19197
SECURE=127.0.0.1:19198
DEMO=127.0.0.1:19199
PROM=127.0.0.1:19090
PROM_SHARDS=127.0.0.1:19091
WEB_USER=e2e
WEB_PASSWORD=e2e-secret
# bcrypt of $WEB_PASSWORD (cost 10)
# shellcheck disable=SC2016
WEB_HASH='$2b$10$RH6dNsB8WfOgTkEYrB8okeeFlnp2Ah99Fc2QA9roe5/zpVXrCV9iO'
LOCK=/tmp/autodiscover-e2e.lock
STATE=/tmp/autodiscover-e2e.pids  # "pid starttime name" of the processes (and "WORKDIR - dir") of the current run
WORKDIR_PREFIX=/tmp/autodiscover-e2e  # the temp dir of a run: $WORKDIR_PREFIX.XXXXXX

# Results, processes, bounded waits: lib.sh, shared with hostile/run.sh.
# shellcheck source=lib.sh
source "$E2E/lib.sh"
# shellcheck source=services.sh
source "$E2E/services.sh"

# ------------------------------------------------------------------------------------------------
# Output (section, pass, fail, check and the rest are in lib.sh)

py() { # run a checks.py subcommand; its PASS/FAIL lines go to the results
    local rc=0
    "$PY" "$E2E/checks.py" "$@" >"$W/py.out" 2>&1 || rc=$?
    cat "$W/py.out"
    cat "$W/py.out" >>"$RESULTS"
    return "$rc"
}

# ------------------------------------------------------------------------------------------------
# Processes (start_bg, stop and the rest are in lib.sh)

track_children() { # remember the children of NAME (nginx workers) for the final leftover check
    local name=$1 child
    for child in $(descendants "${PID[$name]}"); do
        echo "$child $(starttime "$child" || echo 0) $name-child" >>"$STATE"
    done
}

stop_exporter() { # stop NAME and check it exits on SIGTERM by itself
    local name=$1
    if [[ -z ${PID[$name]:-} ]]; then return 0; fi
    if ! alive "${PID[$name]}"; then
        fail "$name was still running before SIGTERM (see $W/$name.log)"
        stop "$name" || true
        return 0
    fi
    if stop "$name"; then pass "$name exits on SIGTERM within 15s"; else fail "$name ignored SIGTERM for 15s (killed)"; fi
}

cleanup() {
    local rc=$?
    set +e
    trap - INT TERM
    stop_all
    if [[ -n $W ]]; then
        check_leftovers
        if [[ -d $W ]] && grep -l 'panicked at' "$W"/*.log "$W"/*.err >/dev/null 2>&1; then
            fail "the exporter panicked: $(grep -l 'panicked at' "$W"/*.log "$W"/*.err | tr '\n' ' ')"
        fi
        section "Summary"
        summary "$rc" exporter.log prometheus.log nginx-error.log dnsmasq.out
    fi
    exit "$rc"
}

# ------------------------------------------------------------------------------------------------
# HTTP helpers (wait_until is in lib.sh)

http_code() { # http_code URL [curl options...]: prints the status code (000 when no answer)
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@" "$url" || true
}

http_ok() { [[ $(http_code "$@") == 200 ]]; }

num_eq() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 == b + 0) }'; }

no_escape() { ! grep -q $'\x1b' "$1"; }

fetch() { # fetch URL OUTFILE [curl options...]: body to OUTFILE, prints the status code
    local url=$1 out=$2
    shift 2
    curl -s -o "$out" -w '%{http_code}' --max-time 30 "$@" "$url" || true
}

promtool_metrics_clean() { # promtool check metrics on FILE prints nothing beyond expected-lint.txt
    local file=$1 what=$2 out rc=0 unexpected
    out=$(promtool check metrics <"$file" 2>&1) || rc=$?
    unexpected=$(echo "$out" | grep -v -x -F -f <(grep -v -e '^#' -e '^$' "$E2E/expected-lint.txt") | grep -v '^$' || true)
    if [[ -z $unexpected ]]; then
        pass "promtool check metrics: $what is clean${out:+ (known: $(echo "$out" | wc -l) line(s) of expected-lint.txt)}"
    else
        fail "promtool check metrics: $what (exit $rc): $(echo "$unexpected" | head -n 20)"
    fi
}

scenario_list() { # "name domain" per scenario [having variants[VARIANT]]
    "$PY" -c 'import json,sys
for s in json.load(open(sys.argv[1], encoding="utf-8"))["scenarios"]:
    if len(sys.argv) < 3 or sys.argv[2] in s.get("variants", {}): print(s["name"], s["domain"])' "$E2E/scenarios.json" "$@"
}

urlencode() { "$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="@"))' "$1"; }

# ------------------------------------------------------------------------------------------------
# Setup

install_packages() {
    local need=()
    command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
    command -v nginx >/dev/null || need+=(nginx)
    command -v openssl >/dev/null || need+=(openssl)
    { command -v prometheus && command -v promtool; } >/dev/null || need+=(prometheus)
    command -v curl >/dev/null || need+=(curl)
    command -v dig >/dev/null || need+=(dnsutils)
    command -v ss >/dev/null || need+=(iproute2)
    command -v ps >/dev/null || need+=(procps)
    [[ -x $PY ]] || need+=(python3)
    apt_install "${need[@]}"
}

preflight_ports() { # nothing else may listen where the suite listens
    local re busy
    re='^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):(5353|5354|10195|19090|19091|19196|19197|19198|19199)$|^(127\.0\.10\.[0-9]+|0\.0\.0\.0|\*|\[::\]):(80|443)$'
    busy=$(ss -Hlntup 2>/dev/null | awk -v re="$re" '$5 ~ re' || true)
    if [[ -n $busy ]]; then
        echo "$busy" >&2
        die "ports the suite needs are taken (see above)"
    fi
    pass "ports 5353-5354/udp, 10195, 19090-19091, 19196-19199 and 80/443 on 127.0.10.x are free"
}

build_binary() {
    if [[ -n ${AUTODISCOVER_BIN:-} ]]; then
        BIN=$(realpath "$AUTODISCOVER_BIN")
    else
        section "Building the release binary (cargo build --release --locked)"
        local t0=$SECONDS target
        if ! (cd "$ROOT" && cargo build --release --locked) >"$W/build.log" 2>&1; then
            tail -n 40 "$W/build.log"
            die "cargo build --release --locked"
        fi
        pass "cargo build --release --locked ($((SECONDS - t0))s)"
        target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
            "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
        BIN=$target/release/autodiscover-exporter
    fi
    [[ -x $BIN ]] || die "no executable binary at $BIN"
    pass "binary: $BIN ($("$BIN" --version 2>/dev/null || echo 'no --version'))"
}

write_dns_config() { # write_dns_config initial|changed
    if [[ $1 == initial ]]; then
        sed -e 's/[[:space:]]*# lost-in-change$//' "$E2E/dns/world.conf" >"$W/dnsmasq.conf"
    else
        grep -v '# lost-in-change$' "$E2E/dns/world.conf" >"$W/dnsmasq.conf"
        cat "$E2E/dns/after-change.conf" >>"$W/dnsmasq.conf"
    fi
    cat "$E2E/dns/delegation-$1.conf" >>"$W/dnsmasq.conf" # NS and SOA records (history checks)
}

dns_answers() { dig +short +time=1 +tries=1 @127.0.0.1 -p 5353 mail.companya.e2e.test A | grep -qx 127.0.10.1; }

start_dns() {
    start_bg dnsmasq "$W/dnsmasq.out" dnsmasq --keep-in-foreground --conf-file="$W/dnsmasq.conf" \
        --no-resolv --no-hosts --listen-address=127.0.0.1 --port=5353 --bind-interfaces \
        --user=root --pid-file="$W/dnsmasq.pid" --log-facility="$W/dnsmasq.log" --log-queries \
        --local-ttl=0
    wait_until 50 0.1 dns_answers || die "dnsmasq does not answer on $DNS (see $W/dnsmasq.out)"
}

start_nginx() {
    mkdir -p "$W/nginx-tmp"
    sed -e "s#@WORK@#$W#g; s#@PKI@#$W/pki#g; s#@E2E@#$E2E#g" "$E2E/nginx/nginx.conf.template" >"$W/nginx.conf"
    nginx -t -q -c "$W/nginx.conf" -p "$W" -e "$W/nginx-error.log" || die "nginx -t (see above)"
    start_bg nginx "$W/nginx.out" nginx -c "$W/nginx.conf" -p "$W" -e "$W/nginx-error.log" -g 'daemon off;'
    wait_until 50 0.1 curl -s -o /dev/null --max-time 2 http://127.0.10.5/ || die "nginx does not answer (see $W/nginx-error.log)"
    track_children nginx
}

# ------------------------------------------------------------------------------------------------
# Infrastructure checks: the world is what the scenarios say, before any binary is involved.

dns_expect() { # dns_expect NAME TYPE "expected answers (sorted, space-separated)"
    local got
    got=$(dig +short +time=2 +tries=1 @127.0.0.1 -p 5353 "$1" "$2" | sort | tr '\n' ' ' | sed 's/ $//')
    if [[ $got == "$3" ]]; then pass "dns: $1 $2 -> $3"; else fail "dns: $1 $2 -> '$got', want '$3'"; fi
}

dns_status() { # dns_status NAME TYPE STATUS
    local got
    got=$(dig +time=2 +tries=1 @127.0.0.1 -p 5353 "$1" "$2" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
    if [[ $got == "$3" ]]; then pass "dns: $1 $2 -> $3"; else fail "dns: $1 $2 -> $got, want $3"; fi
}

tls_expect() { # tls_expect IP HOSTNAME VERIFY_CODE: openssl's verdict for the presented chain
    local got
    got=$(timeout 10 openssl s_client -connect "$1:443" -verify_hostname "$2" -CAfile "$W/pki/root.pem" \
        </dev/null 2>&1 | sed -n 's/.*Verify return code: \([0-9]*\).*/\1/p' | head -n 1)
    if [[ $got == "$3" ]]; then pass "tls: $2 at $1 -> verify code $3"; else fail "tls: $2 at $1 -> verify code '$got', want $3"; fi
}

http_expect() { # http_expect METHOD URL IP CODE [HEADER...]: status and headers of one request
    local method=$1 url=$2 ip=$3 want=$4 host port got h ok=1
    shift 4
    host=${url#*://}
    host=${host%%/*}
    if [[ $url == https:* ]]; then port=443; else port=80; fi
    got=$(curl -s -o /dev/null -D "$W/headers" -w '%{http_code}' --max-time 10 --cacert "$W/pki/root.pem" \
        --resolve "$host:$port:$ip" -X "$method" "$url" || true)
    [[ $got == "$want" ]] || ok=0
    for h in "$@"; do
        grep -qiF -- "$h" "$W/headers" 2>/dev/null || { ok=0; got="$got, missing header '$h'"; }
    done
    if [[ $ok == 1 ]]; then pass "http: $method $url -> $want $*"; else fail "http: $method $url -> $got, want $want $*"; fi
}

refused_expect() { # refused_expect IP PORT
    local rc=0
    curl -s -o /dev/null --max-time 5 "http://$1:$2/" || rc=$?
    if [[ $rc == 7 ]]; then pass "tcp: $1:$2 refuses connections"; else fail "tcp: $1:$2 -> curl exit $rc, want 7 (refused)"; fi
}

http_body_expect() { # http_body_expect METHOD URL IP CODE BODY [HEADER...]: status, exact body, headers
    local method=$1 url=$2 ip=$3 want=$4 body=$5 host port got h ok=1
    shift 5
    host=${url#*://}
    host=${host%%/*}
    if [[ $url == https:* ]]; then port=443; else port=80; fi
    got=$(curl -s -o "$W/body" -D "$W/headers" -w '%{http_code}' --max-time 10 --cacert "$W/pki/root.pem" \
        --resolve "$host:$port:$ip" -X "$method" "$url" || true)
    [[ $got == "$want" ]] || ok=0
    if [[ $(cat "$W/body" 2>/dev/null) != "$body" ]]; then
        ok=0
        got="$got, body '$(head -c 300 "$W/body" 2>/dev/null)'"
    fi
    for h in "$@"; do
        grep -qiF -- "$h" "$W/headers" 2>/dev/null || { ok=0; got="$got, missing header '$h'"; }
    done
    if [[ $ok == 1 ]]; then pass "http: $method $url -> $want '$body' $*"; else fail "http: $method $url -> $got, want $want '$body' $*"; fi
}

aia_expect() { # aia_expect IP HOSTNAME: the leaf at IP is sent alone, and its AIA caIssuers URL
    #            (fetched from our DNS world over http) completes the chain to the test root
    local ip=$1 name=$2 url host aip rc=0 got
    timeout 10 openssl s_client -connect "$ip:443" -servername "$name" -showcerts </dev/null 2>/dev/null |
        openssl x509 -out "$W/aia-leaf.pem" 2>/dev/null || rc=$?
    url=$(openssl x509 -in "$W/aia-leaf.pem" -noout -ext authorityInfoAccess 2>/dev/null |
        sed -n 's/.*CA Issuers - URI:\(http:[^ ]*\).*/\1/p' | head -n 1 || true)
    if [[ $rc != 0 || -z $url ]]; then
        fail "aia: the leaf at $ip has no caIssuers URL"
        return
    fi
    host=${url#http://}
    host=${host%%/*}
    aip=$(dig +short +time=2 +tries=1 @127.0.0.1 -p 5353 "$host" A | head -n 1 || true)
    rc=0
    curl -s -f -o "$W/aia-issuer.der" --max-time 10 --resolve "$host:80:$aip" "$url" || rc=$?
    openssl x509 -inform DER -in "$W/aia-issuer.der" -out "$W/aia-issuer.pem" 2>/dev/null || rc=1
    got=$(openssl verify -CAfile "$W/pki/root.pem" -untrusted "$W/aia-issuer.pem" -verify_hostname "$name" \
        "$W/aia-leaf.pem" 2>&1 || true)
    if [[ $rc == 0 && $got == *": OK" ]]; then
        pass "aia: $name at $ip sends its leaf only; $url completes the chain (openssl verify: OK)"
    else
        fail "aia: $name at $ip: caIssuers $url -> curl/openssl exit $rc, openssl verify: $got"
    fi
}

no_aia_expect() { # no_aia_expect IP HOSTNAME: the leaf at IP has no AIA extension
    local out
    out=$(timeout 10 openssl s_client -connect "$1:443" -servername "$2" </dev/null 2>/dev/null |
        openssl x509 -noout -text 2>/dev/null || true)
    if [[ -n $out && $out != *"Authority Information Access"* ]]; then
        pass "aia: the leaf of $2 at $1 has no AIA extension"
    else
        fail "aia: the leaf of $2 at $1 has an AIA extension (or no leaf was read)"
    fi
}

chain_length_expect() { # chain_length_expect IP HOSTNAME N: the server sends N certificates
    local got
    got=$(timeout 10 openssl s_client -connect "$1:443" -servername "$2" -showcerts </dev/null 2>/dev/null |
        grep -c -- '-----BEGIN CERTIFICATE-----' || true)
    if [[ $got == "$3" ]]; then pass "tls: $2 at $1 sends $3 certificate(s)"; else fail "tls: $2 at $1 sends $got certificate(s), want $3"; fi
}

infra_checks_microsoft365() { # the second round's world: Microsoft 365, hybrid, AIA, IDN
    section "Infrastructure: DNS (Microsoft 365, hybrid, AIA, IDN)"
    dns_expect outlook.office365.com A "127.0.10.20"
    dns_expect outlook.office365.com AAAA ""
    dns_status outlook.office365.com AAAA NOERROR
    dns_expect autodiscover.outlook.com A "127.0.10.20"
    dns_expect autodiscover-s.outlook.com A "127.0.10.20"
    dns_status unknown.outlook.com A NXDOMAIN
    dns_expect cloud.e2e.test A "127.0.10.21"
    dns_expect autodiscover.cloud.e2e.test A "127.0.10.20 autodiscover.outlook.com."
    dns_status _autodiscover._tcp.cloud.e2e.test SRV NXDOMAIN
    dns_expect mail.hybrid.e2e.test A "127.0.10.22"
    dns_expect autodiscover.hybrid.e2e.test A "127.0.10.22"
    dns_expect hybrid.e2e.test A ""
    dns_expect autodiscover.hybrid302.e2e.test A "127.0.10.23"
    dns_expect mail.proxy.e2e.test A "127.0.10.24"
    dns_status autodiscover.proxy.e2e.test A NXDOMAIN
    dns_expect autodiscover.leafonly.e2e.test A "127.0.10.25"
    dns_expect aia.e2e.test A "127.0.10.26"
    dns_expect autodiscover.leafnoaia.e2e.test A "127.0.10.27"
    dns_expect autodiscover.xn--bcher-kva.e2e.test A "127.0.10.28"
    dns_expect xn--bcher-kva.e2e.test A ""

    section "Infrastructure: TLS (Microsoft 365, hybrid, AIA, IDN; 21: leaf sent without its issuer)"
    tls_expect 127.0.10.20 outlook.office365.com 0
    tls_expect 127.0.10.20 autodiscover.outlook.com 0
    tls_expect 127.0.10.20 autodiscover-s.outlook.com 0
    tls_expect 127.0.10.20 autodiscover.cloud.e2e.test 62
    tls_expect 127.0.10.21 www.cloud.e2e.test 0
    tls_expect 127.0.10.21 cloud.e2e.test 62
    tls_expect 127.0.10.22 mail.hybrid.e2e.test 0
    tls_expect 127.0.10.23 autodiscover.hybrid302.e2e.test 0
    tls_expect 127.0.10.24 mail.proxy.e2e.test 18
    tls_expect 127.0.10.25 autodiscover.leafonly.e2e.test 21
    tls_expect 127.0.10.27 autodiscover.leafnoaia.e2e.test 21
    tls_expect 127.0.10.28 autodiscover.xn--bcher-kva.e2e.test 0
    chain_length_expect 127.0.10.20 outlook.office365.com 2
    chain_length_expect 127.0.10.25 autodiscover.leafonly.e2e.test 1
    chain_length_expect 127.0.10.27 autodiscover.leafnoaia.e2e.test 1
    aia_expect 127.0.10.25 autodiscover.leafonly.e2e.test
    no_aia_expect 127.0.10.27 autodiscover.leafnoaia.e2e.test

    section "Infrastructure: HTTP (Microsoft 365, hybrid, AIA, IDN)"
    local m365=https://outlook.office365.com/autodiscover/autodiscover.json/v1.0
    local exo='{"Protocol":"AutodiscoverV1","Url":"https://outlook.office365.com/autodiscover/autodiscover.xml"}'
    http_body_expect GET "$m365/e2e@cloud.e2e.test?Protocol=AutodiscoverV1" 127.0.10.20 200 "$exo" \
        "Content-Type: application/json"
    http_body_expect GET "https://outlook.office365.com/AutoDiscover/AutoDiscover.json/V1.0/Someone%40CLOUD.E2E.TEST?Protocol=autodiscoverv1" \
        127.0.10.20 200 "$exo"
    http_body_expect GET "$m365/e2e@hybrid.e2e.test?Protocol=AutodiscoverV1" 127.0.10.20 200 \
        '{"Protocol":"AutodiscoverV1","Url":"https://mail.hybrid.e2e.test/autodiscover/autodiscover.xml"}'
    http_body_expect GET "$m365/e2e@proxy.e2e.test?Protocol=AutodiscoverV1" 127.0.10.20 200 \
        '{"Protocol":"AutodiscoverV1","Url":"https://mail.proxy.e2e.test/autodiscover/autodiscover.xml"}'
    http_expect GET "$m365/e2e@hybrid302.e2e.test?Protocol=AutodiscoverV1" 127.0.10.20 302 \
        "Location: $m365/e2e@hybrid302.e2e.test?Protocol=AutodiscoverV1&RedirectCount=1"
    http_expect GET "$m365/someone@companya.e2e.test?Protocol=AutodiscoverV1" 127.0.10.20 302 \
        "Location: $m365/someone@companya.e2e.test?Protocol=AutodiscoverV1&RedirectCount=1"
    http_expect GET "$m365/e2e@xn--bcher-kva.e2e.test?Protocol=AutodiscoverV1" 127.0.10.20 302
    http_expect GET "$m365/e2e@sub.cloud.e2e.test?Protocol=AutodiscoverV1" 127.0.10.20 302
    http_expect GET "$m365/e2e@cloud.e2e.test" 127.0.10.20 400 "Content-Type: application/json"
    http_expect GET "$m365/e2e@cloud.e2e.test?Protocol=Rest" 127.0.10.20 400
    local eo=https://outlook.office365.com/autodiscover/autodiscover.xml
    http_expect POST "$eo" 127.0.10.20 401 "WWW-Authenticate: Bearer" 'WWW-Authenticate: Basic realm="' \
        "X-OAuth-Enabled: True" "X-SOAP-Enabled: True"
    http_expect POST https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml 127.0.10.20 401 \
        "WWW-Authenticate: Bearer" "X-SOAP-Enabled: True"
    http_expect GET https://autodiscover.outlook.com/AUTODISCOVER/AUTODISCOVER.XML 127.0.10.20 401 "WWW-Authenticate: Basic"
    http_expect POST https://outlook.office365.com/EWS/Exchange.asmx 127.0.10.20 404
    http_expect GET http://autodiscover.cloud.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.20 302 \
        "Location: https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml"
    http_expect POST https://www.cloud.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.21 404
    http_expect POST https://mail.hybrid.e2e.test/autodiscover/autodiscover.xml 127.0.10.22 401 \
        "WWW-Authenticate: Negotiate" "WWW-Authenticate: NTLM" "X-SOAP-Enabled: True"
    http_expect POST https://autodiscover.hybrid302.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.23 401 \
        "WWW-Authenticate: NTLM" "X-OAuth-Enabled: True"
    http_expect POST https://autodiscover.xn--bcher-kva.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.28 401 \
        "WWW-Authenticate: Negotiate"
    http_expect GET http://aia.e2e.test/intermediate.der 127.0.10.26 200 "Content-Type: application/pkix-cert"
    http_expect GET http://aia.e2e.test/root.key 127.0.10.26 404
    http_expect GET http://aia.e2e.test/intermediate.key 127.0.10.26 404
    refused_expect 127.0.10.22 80
    refused_expect 127.0.10.26 443
}

infra_checks() {
    section "Infrastructure: DNS"
    dns_expect mail.companya.e2e.test A "127.0.10.1"
    dns_expect autodiscover.companya.e2e.test A "127.0.10.1"
    dns_expect companyb.e2e.test A "127.0.10.2"
    dns_expect _autodiscover._tcp.companyb.e2e.test SRV "0 0 443 mail.companya.e2e.test."
    dns_expect _autodiscover._tcp.companyc.e2e.test SRV "0 0 443 mail.companya.e2e.test."
    dns_expect autodiscover.cname.e2e.test A "127.0.10.1 mail.companya.e2e.test."
    dns_expect autodiscover.multi.e2e.test A "127.0.10.8 127.0.10.9"
    dns_expect autodiscover.companya.e2e.test AAAA ""
    dns_status autodiscover.companyb.e2e.test A NXDOMAIN
    dns_expect companyc.e2e.test A ""
    dns_status nothing.e2e.test A NXDOMAIN
    dns_status autodiscover.nothing.e2e.test A NXDOMAIN
    dns_status _autodiscover._tcp.nothing.e2e.test SRV NXDOMAIN

    section "Infrastructure: TLS (openssl verify codes: 0 ok, 9 not yet valid, 10 expired, 18 self-signed, 62 name mismatch)"
    tls_expect 127.0.10.1 mail.companya.e2e.test 0
    tls_expect 127.0.10.1 autodiscover.companya.e2e.test 0
    tls_expect 127.0.10.1 autodiscover.cname.e2e.test 62
    tls_expect 127.0.10.2 www.companyb.e2e.test 0
    tls_expect 127.0.10.2 companyb.e2e.test 62
    tls_expect 127.0.10.3 autodiscover.expired.e2e.test 10
    tls_expect 127.0.10.4 autodiscover.selfsigned.e2e.test 18
    tls_expect 127.0.10.7 website.e2e.test 0
    tls_expect 127.0.10.8 autodiscover.multi.e2e.test 0
    tls_expect 127.0.10.9 autodiscover.multi.e2e.test 10
    tls_expect 127.0.10.10 autodiscover.notyet.e2e.test 9
    tls_expect 127.0.10.11 autodiscover.expiring.e2e.test 0

    section "Infrastructure: HTTP"
    local ad=https://autodiscover.companya.e2e.test
    http_expect POST "$ad/Autodiscover/Autodiscover.xml" 127.0.10.1 401 \
        "WWW-Authenticate: Negotiate" "WWW-Authenticate: NTLM" "X-SOAP-Enabled: True" \
        "X-WSSecurity-Enabled: True" "X-OAuth-Enabled: True"
    http_expect GET "$ad/autodiscover/autodiscover.xml" 127.0.10.1 401 "WWW-Authenticate: NTLM"
    http_expect POST "$ad/EWS/Exchange.asmx" 127.0.10.1 404
    http_expect GET https://www.companyb.e2e.test/ 127.0.10.2 200 "Content-Type: text/html"
    http_expect POST https://www.companyb.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.2 404
    http_expect POST https://website.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.7 404
    http_expect GET http://autodiscover.redirect.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.5 302 \
        "Location: https://mail.companya.e2e.test/Autodiscover/Autodiscover.xml"
    http_expect GET http://autodiscover.insecure.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.6 302 \
        "Location: http://mail.companya.e2e.test/Autodiscover/Autodiscover.xml"
    refused_expect 127.0.10.5 443
    refused_expect 127.0.10.1 80

    infra_checks_microsoft365
}

# ------------------------------------------------------------------------------------------------
# Alert rules and Prometheus

RULE_FILES=()
TEST_FILES=()
RULE_COUNT=""

classify_alerts() {
    local f
    shopt -s nullglob
    for f in "$ROOT"/alerts/*.yml "$ROOT"/alerts/*.yaml; do
        if grep -q '^tests:' "$f"; then
            TEST_FILES+=("$f")
        elif grep -q '^groups:' "$f"; then
            RULE_FILES+=("$f")
        fi
    done
    shopt -u nullglob
}

promtool_rules() {
    section "Alert rules (promtool)"
    if [[ ${#RULE_FILES[@]} -eq 0 ]]; then
        skip "no alert rule files in alerts/ yet"
        return 0
    fi
    local out rc=0 f
    out=$(promtool check rules "${RULE_FILES[@]}" 2>&1) || rc=$?
    echo "$out"
    if [[ $rc -eq 0 ]]; then pass "promtool check rules ${RULE_FILES[*]##*/}"; else fail "promtool check rules (exit $rc)"; fi
    RULE_COUNT=$(echo "$out" | sed -n 's/.*SUCCESS: \([0-9]*\) rules found.*/\1/p' | awk '{s += $1} END {print s + 0}')
    if [[ ${#TEST_FILES[@]} -eq 0 ]]; then
        fail "alerts/ has rules but no promtool unit test file (a file with 'tests:')"
    fi
    for f in "${TEST_FILES[@]}"; do
        rc=0
        out=$(cd "$(dirname "$f")" && promtool test rules "$(basename "$f")" 2>&1) || rc=$?
        if [[ $rc -eq 0 ]]; then
            pass "promtool test rules ${f##*/}"
        else
            echo "$out" | tail -n 40
            fail "promtool test rules ${f##*/} (exit $rc)"
        fi
    done
}

start_prometheus() { # start_prometheus TARGET JOB
    {
        echo "global:"
        echo "  scrape_interval: 5s"
        echo "  scrape_timeout: 4s"
        echo "  evaluation_interval: 5s"
        echo "rule_files:"
        if [[ ${#RULE_FILES[@]} -eq 0 ]]; then echo "  []"; fi
        local f
        for f in "${RULE_FILES[@]}"; do echo "  - '$f'"; done
        echo "scrape_configs:"
        echo "  - job_name: '$2'"
        echo "    static_configs:"
        echo "      - targets: ['$1']"
    } >"$W/prometheus.yml"
    promtool check config "$W/prometheus.yml" >/dev/null || die "promtool check config $W/prometheus.yml"
    PROM_SINCE=$(date +%s)
    start_bg prometheus "$W/prometheus.log" prometheus --config.file="$W/prometheus.yml" \
        --storage.tsdb.path="$W/prometheus-data" --web.listen-address="$PROM"
    wait_until 100 0.3 http_ok "http://$PROM/-/ready" || die "Prometheus not ready on $PROM (see $W/prometheus.log)"
    pass "Prometheus ready on $PROM"
}

# ------------------------------------------------------------------------------------------------
# The binary

check_cli() {
    section "check: one probe per scenario (--output json)"
    local name domain rc
    while read -r name domain; do
        rc=0
        timeout 60 "$BIN" check "$domain" --nameserver "$DNS" --ca-file "$W/pki/root.pem" --output json \
            >"$W/check-$name.json" 2>"$W/check-$name.err" || rc=$?
        py report --scenarios "$E2E/scenarios.json" --exit-code "$rc" "$name" "$W/check-$name.json" || true
    done < <(scenario_list)

    section "check: an address, the config file's resolver and trust"
    rc=0
    timeout 60 "$BIN" check someone@companyc.e2e.test --nameserver "$DNS" --ca-file "$W/pki/root.pem" \
        --output json >"$W/check-address.json" 2>"$W/check-address.err" || rc=$?
    py report --scenarios "$E2E/scenarios.json" --context "check address" --address someone@companyc.e2e.test \
        --exit-code "$rc" seed-fixed "$W/check-address.json" || true
    rc=0
    timeout 60 "$BIN" check companyb.e2e.test --config.file "$W/exporter.yml" --output json \
        >"$W/check-config-file.json" 2>"$W/check-config-file.err" || rc=$?
    py report --scenarios "$E2E/scenarios.json" --context "check --config.file" --exit-code "$rc" \
        seed-broken "$W/check-config-file.json" || true

    section "check: Microsoft 365 left out by policy (a config whose defaults.steps omit microsoft365)"
    py serve-config --scenarios "$E2E/scenarios.json" --nameserver "$DNS" --ca-file "$W/pki/root.pem" \
        --default-steps root_domain,autodiscover_domain,http_redirect,srv_record --out "$W/exporter-classic.yml" ||
        fail "serve-config --default-steps"
    while read -r name domain; do
        rc=0
        timeout 60 "$BIN" check "$domain" --config.file "$W/exporter-classic.yml" --output json \
            >"$W/check-classic-$name.json" 2>"$W/check-classic-$name.err" || rc=$?
        py report --scenarios "$E2E/scenarios.json" --context "check classic" --variant classic --exit-code "$rc" \
            "$name" "$W/check-classic-$name.json" || true
    done < <(scenario_list classic)

    section "check: an international domain's address, in Unicode"
    rc=0
    timeout 60 "$BIN" check 'someone@bücher.e2e.test' --nameserver "$DNS" --ca-file "$W/pki/root.pem" \
        --output json >"$W/check-idn-address.json" 2>"$W/check-idn-address.err" || rc=$?
    py report --scenarios "$E2E/scenarios.json" --context "check address" --address 'someone@bücher.e2e.test' \
        --exit-code "$rc" idn "$W/check-idn-address.json" || true

    section "check: unreachable resolver"
    rc=0
    timeout 60 "$BIN" check nothing.e2e.test --nameserver "$DEAD_DNS" --ca-file "$W/pki/root.pem" --output json \
        >"$W/check-dead-dns.json" 2>"$W/check-dead-dns.err" || rc=$?
    py probe-error --exit-code "$rc" "$W/check-dead-dns.json" || true

    section "check: text output (companyb.e2e.test, the seed)"
    rc=0
    timeout 60 "$BIN" check companyb.e2e.test --nameserver "$DNS" --ca-file "$W/pki/root.pem" --output text \
        >"$W/check-text.out" 2>"$W/check-text.err" || rc=$?
    sed 's/^/    /' "$W/check-text.out"
    if [[ $rc == 1 ]]; then pass "check --output text exits 1 for certificate_prompt"; else fail "check --output text exit $rc, want 1"; fi
    check "check --output text names the verdict" grep -qiE 'certificate.prompt' "$W/check-text.out"
    check "check --output text names the SRV endpoint" grep -qi 'mail.companya.e2e.test' "$W/check-text.out"
    check "check --output text has no colour codes when stdout is not a terminal" no_escape "$W/check-text.out"
    timeout 60 "$BIN" check nothing.e2e.test --nameserver "$DNS" --output text >"$W/check-text-nothing.out" 2>&1 || true
    check "check --output text for nothing.e2e.test says not found" grep -qiE 'not.found' "$W/check-text-nothing.out"
    rc=0
    timeout 60 "$BIN" check cloud.e2e.test --nameserver "$DNS" --ca-file "$W/pki/root.pem" --output text \
        >"$W/check-text-cloud.out" 2>&1 || rc=$?
    if [[ $rc == 0 ]]; then pass "check --output text exits 0 for cloud.e2e.test (ok via Microsoft 365)"; else fail "check --output text for cloud.e2e.test exit $rc, want 0"; fi
    check "check --output text for cloud.e2e.test names Microsoft 365" grep -qiE 'microsoft.?365' "$W/check-text-cloud.out"
    check "check --output text for cloud.e2e.test names the Exchange Online endpoint" grep -qi 'outlook.office365.com' "$W/check-text-cloud.out"
    timeout 60 "$BIN" check 'bücher.e2e.test' --nameserver "$DNS" --ca-file "$W/pki/root.pem" --output text \
        >"$W/check-text-idn.out" 2>&1 || true
    check "check --output text for bücher.e2e.test shows the domain in Unicode" grep -q 'bücher.e2e.test' "$W/check-text-idn.out"

    section "check: usage errors exit 2"
    local args
    for args in "check --no-such-flag companya.e2e.test" "check" "check companya.e2e.test --output yaml" \
        "check companya.e2e.test --nameserver not-an-address" "check companya.e2e.test --config.file $W/missing.yml" \
        "check a..b.e2e.test" "check bad!name.e2e.test"; do
        rc=0
        # shellcheck disable=SC2086
        timeout 30 "$BIN" $args >"$W/usage.out" 2>&1 || rc=$?
        if [[ $rc == 2 ]]; then pass "'$args' exits 2"; else fail "'$args' exits $rc, want 2: $(head -c 300 "$W/usage.out")"; fi
    done
}

check_config_cmd() {
    section "check-config"
    local f rc found=0
    rc=0
    "$BIN" check-config "$W/exporter.yml" >"$W/check-config.out" 2>&1 || rc=$?
    if [[ $rc == 0 ]]; then pass "check-config on the suite's config"; else fail "check-config on the suite's config exits $rc: $(cat "$W/check-config.out")"; fi
    rc=0
    "$BIN" check-config "$W/exporter-classic.yml" >"$W/check-config.out" 2>&1 || rc=$?
    if [[ $rc == 0 ]]; then pass "check-config on the suite's config with defaults.steps"; else fail "check-config on $W/exporter-classic.yml exits $rc: $(cat "$W/check-config.out")"; fi

    while IFS= read -r f; do
        if ! grep -q '^domains:' "$f"; then
            echo "  (${f#"$ROOT"/} is not an exporter config: no top-level 'domains:')"
            continue
        fi
        found=1
        rc=0
        "$BIN" check-config "$f" >"$W/check-config.out" 2>&1 || rc=$?
        if [[ $rc == 0 ]]; then pass "check-config ${f#"$ROOT"/}"; else fail "check-config ${f#"$ROOT"/} exits $rc: $(cat "$W/check-config.out")"; fi
    done < <(find "$ROOT/examples" -type f \( -name '*.yml' -o -name '*.yaml' \) 2>/dev/null | sort)
    [[ $found == 1 ]] || skip "no exporter config in examples/ yet"

    # Broken configs: exit 2 and a line:column pointing at the problem.
    printf 'defaults:\n  interval: 5m\n  intervall: 1m\ndomains:\n  - domain: example.com\n' >"$W/bad-unknown-key.yml"
    printf 'domains:\n  - domain: example.com\n    interval: soon\n' >"$W/bad-duration.yml"
    printf 'domains:\n  - domain: example.com\n   labels: {a: b}\n' >"$W/bad-yaml.yml"
    local bad line
    for bad in "bad-unknown-key.yml 3" "bad-duration.yml 3" "bad-yaml.yml [0-9]+"; do
        # shellcheck disable=SC2086
        set -- $bad
        rc=0
        "$BIN" check-config "$W/$1" >"$W/check-config.out" 2>&1 || rc=$?
        line=$2
        if [[ $rc == 2 ]] && grep -qE "(^|[^0-9])$line:[0-9]+" "$W/check-config.out"; then
            pass "check-config $1 exits 2 with line:column: $(head -n 1 "$W/check-config.out")"
        else
            fail "check-config $1 exits $rc (want 2) with '$line:<column>': $(head -c 300 "$W/check-config.out")"
        fi
    done
    rc=0
    "$BIN" check-config "$W/missing.yml" >"$W/check-config.out" 2>&1 || rc=$?
    if [[ $rc == 2 ]]; then pass "check-config on a missing file exits 2"; else fail "check-config on a missing file exits $rc"; fi
}

metric_value() { # metric_value URL 'name{labels-substring}': first matching sample value
    # awk reads to the end: leaving early would fail curl (exit 23) under pipefail once the
    # exposition is larger than a pipe buffer.
    curl -s --max-time 10 "$1" | awk -v pat="$2" '!found && index($0, pat) == 1 {print $NF; found = 1}'
}

all_probed() { # all_probed ADDR N: every configured domain has a probe timestamp
    local n
    n=$(curl -s --max-time 10 "http://$1/metrics" | grep -c '^autodiscover_probe_timestamp_seconds{' || true)
    [[ $n -ge $2 ]]
}

start_exporter() { # start_exporter NAME ADDR [extra serve args...]
    local name=$1 addr=$2
    shift 2
    start_bg "$name" "$W/$name.log" "$BIN" serve --config.file "$W/exporter.yml" --web.listen-address "$addr" "$@"
}

serve_checks() {
    local n
    n=$(scenario_list | wc -l)
    section "serve: /metrics, /probe, /, /domains"
    check "/-/healthy answers 200" http_ok "http://$EXPORTER/-/healthy"
    if wait_until 60 1 all_probed "$EXPORTER" "$n"; then
        pass "all $n domains probed"
    else
        fail "not every domain probed within 60s"
    fi

    local code
    code=$(fetch "http://$EXPORTER/metrics" "$W/metrics.txt" -D "$W/metrics.headers")
    if [[ $code == 200 ]]; then pass "/metrics answers 200"; else fail "/metrics answers $code"; fi
    check "/metrics is the classic text format by default" grep -qi '^content-type: text/plain; version=0.0.4' "$W/metrics.headers"
    promtool_metrics_clean "$W/metrics.txt" "/metrics"
    py metrics --scenarios "$E2E/scenarios.json" --pki "$W/pki" --interval 15 "$W/metrics.txt" || true
    check '/metrics: autodiscover_outcome{domain="companyb.e2e.test",...,outcome="certificate_prompt"} 1' \
        grep -qE '^autodiscover_outcome\{([^}]*,)?domain="companyb\.e2e\.test"[^}]*outcome="certificate_prompt"[^}]*\} 1(\.0)?$|^autodiscover_outcome\{([^}]*,)?outcome="certificate_prompt"[^}]*domain="companyb\.e2e\.test"[^}]*\} 1(\.0)?$' "$W/metrics.txt"

    check '/metrics: autodiscover_outcome{domain="bücher.e2e.test",...,outcome="ok"} 1 (the domain as configured)' \
        grep -qE '^autodiscover_outcome\{([^}]*,)?domain="bücher\.e2e\.test"[^}]*outcome="ok"[^}]*\} 1(\.0)?$|^autodiscover_outcome\{([^}]*,)?outcome="ok"[^}]*domain="bücher\.e2e\.test"[^}]*\} 1(\.0)?$' "$W/metrics.txt"
    check '/metrics: autodiscover_step_reached{domain="cloud.e2e.test",...} 5 (microsoft365)' \
        grep -qE '^autodiscover_step_reached\{([^}]*,)?domain="cloud\.e2e\.test"[^}]*\} 5(\.0)?$' "$W/metrics.txt"

    code=$(fetch "http://$EXPORTER/metrics" "$W/metrics.om" -D "$W/metrics.om.headers" \
        -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5')
    if [[ $code == 200 ]] && grep -qi '^content-type: application/openmetrics-text' "$W/metrics.om.headers" &&
        [[ $(tail -n 1 "$W/metrics.om") == "# EOF" ]]; then
        pass "/metrics speaks OpenMetrics 1.0 when asked"
    else
        fail "/metrics with Accept: application/openmetrics-text -> $code, $(grep -i '^content-type' "$W/metrics.om.headers"), last line '$(tail -n 1 "$W/metrics.om")'"
    fi

    code=$(fetch "http://$EXPORTER/probe?target=companyb.e2e.test" "$W/probe.txt")
    if [[ $code == 200 ]]; then pass "/probe?target=companyb.e2e.test answers 200"; else fail "/probe?target=companyb.e2e.test answers $code"; fi
    promtool_metrics_clean "$W/probe.txt" "/probe?target=companyb.e2e.test"
    py probe-metrics --scenarios "$E2E/scenarios.json" --pki "$W/pki" companyb.e2e.test "$W/probe.txt" || true
    code=$(fetch "http://$EXPORTER/probe?target=companyb.e2e.test&debug=true" "$W/probe-debug.txt")
    if [[ $code == 200 ]] && grep -q 'companyb.e2e.test' "$W/probe-debug.txt" && grep -q 'mail.companya.e2e.test' "$W/probe-debug.txt"; then
        pass "/probe?target=companyb.e2e.test&debug=true returns the trace"
    else
        fail "/probe?target=companyb.e2e.test&debug=true -> $code: $(head -c 300 "$W/probe-debug.txt")"
    fi
    code=$(fetch "http://$EXPORTER/probe?target=$(urlencode 'bücher.e2e.test')" "$W/probe-idn.txt")
    if [[ $code == 200 ]]; then pass "/probe?target=bücher.e2e.test (percent-encoded UTF-8) answers 200"; else fail "/probe?target=bücher.e2e.test answers $code"; fi
    py probe-metrics --scenarios "$E2E/scenarios.json" --pki "$W/pki" 'bücher.e2e.test' "$W/probe-idn.txt" || true
    code=$(http_code "http://$EXPORTER/probe?target=unconfigured.e2e.test")
    if [[ $code == 400 ]]; then pass "/probe of an unconfigured target answers 400"; else fail "/probe?target=unconfigured.e2e.test answers $code, want 400"; fi
    code=$(http_code "http://$EXPORTER/probe")
    if [[ $code == 400 ]]; then pass "/probe without target answers 400"; else fail "/probe without target answers $code, want 400"; fi
    code=$(http_code "http://$EXPORTER/probe?target=%2F..%2Fetc%2Fpasswd")
    if [[ $code == 400 ]]; then pass "/probe with a malformed target answers 400"; else fail "/probe?target=/../etc/passwd answers $code, want 400"; fi

    code=$(fetch "http://$EXPORTER/" "$W/index.html")
    if [[ $code == 200 ]]; then pass "/ answers 200"; else fail "/ answers $code"; fi
    py status-page --scenarios "$E2E/scenarios.json" "$W/index.html" || true

    local name domain
    while read -r name domain; do
        code=$(fetch "http://$EXPORTER/domains/$(urlencode "$domain")" "$W/domain-$name.json" -H 'Accept: application/json')
        if [[ $code != 200 ]]; then
            fail "/domains/$domain (JSON) answers $code"
            continue
        fi
        py report --scenarios "$E2E/scenarios.json" --context "/domains" "$name" "$W/domain-$name.json" || true
    done < <(scenario_list)
    code=$(fetch "http://$EXPORTER/domains/companyb.e2e.test" "$W/domain.html" -D "$W/domain.headers" -H 'Accept: text/html')
    if [[ $code == 200 ]] && grep -qi '^content-type: text/html' "$W/domain.headers" && grep -q 'companyb.e2e.test' "$W/domain.html"; then
        pass "/domains/companyb.e2e.test is an HTML page"
    else
        fail "/domains/companyb.e2e.test (HTML) -> $code $(grep -i '^content-type' "$W/domain.headers")"
    fi
    code=$(http_code "http://$EXPORTER/domains/unconfigured.e2e.test")
    if [[ $code == 404 ]]; then pass "/domains/unconfigured.e2e.test answers 404"; else fail "/domains/unconfigured.e2e.test answers $code, want 404"; fi
}

shard_checks() {
    section "serve --shard 1/2 and 2/2"
    start_exporter shard1 "$SHARD1" --shard 1/2
    start_exporter shard2 "$SHARD2" --shard 2/2
    local i ok=0
    for ((i = 0; i < 30; i++)); do
        curl -s --max-time 10 "http://$SHARD1/metrics" >"$W/shard1.txt" || true
        curl -s --max-time 10 "http://$SHARD2/metrics" >"$W/shard2.txt" || true
        if "$PY" "$E2E/checks.py" shard --scenarios "$E2E/scenarios.json" "$W/shard1.txt" "$W/shard2.txt" >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 1
    done
    [[ $ok == 1 ]] || echo "  (shards still disagree after 30s)"
    py shard --scenarios "$E2E/scenarios.json" "$W/shard1.txt" "$W/shard2.txt" || true
    shards_behind_prometheus
    stop_exporter shard1
    stop_exporter shard2

    local rc=0
    timeout 20 "$BIN" serve --config.file "$W/exporter.yml" --web.listen-address "$SHARD1" --shard 3/2 \
        >"$W/shard-bad.log" 2>&1 || rc=$?
    if [[ $rc != 0 && $rc != 124 ]]; then pass "serve --shard 3/2 refuses to start (exit $rc)"; else fail "serve --shard 3/2 -> exit $rc"; fi
}

shards_behind_prometheus() { # the two replicas behind one Prometheus, both ways of sharding
    section "Two replicas behind one Prometheus: --shard on /metrics, hashmod over /probe"
    # As in examples/prometheus/scrape-sharded.yml: job shards scrapes the --shard replicas'
    # /metrics; job probe-hashmod lists the domains as targets and hashmod picks the replica
    # that probes each one on /probe (any replica probes any configured domain there).
    local domains n
    domains=$(scenario_list | awk '{ print $2 }' | LC_ALL=C grep -v '[^ -~]' || true)
    n=$(echo "$domains" | grep -c . || true)
    {
        echo "global:"
        echo "  scrape_interval: 5s"
        echo "  scrape_timeout: 4s"
        echo "scrape_configs:"
        echo "  - job_name: shards"
        echo "    static_configs:"
        echo "      - targets: ['$SHARD1', '$SHARD2']"
        echo "  - job_name: probe-hashmod"
        echo "    metrics_path: /probe"
        echo "    scrape_interval: 10s"
        echo "    scrape_timeout: 9s"
        echo "    static_configs:"
        echo "      - targets:"
        echo "$domains" | sed 's/^/          - /'
        echo "    relabel_configs:"
        echo "      - source_labels: [__address__]"
        echo "        target_label: __param_target"
        echo "      - source_labels: [__param_target]"
        echo "        target_label: instance"
        echo "      - source_labels: [__param_target]"
        echo "        modulus: 2"
        echo "        target_label: __tmp_shard"
        echo "        action: hashmod"
        echo "      - source_labels: [__tmp_shard]"
        echo "        regex: '0'"
        echo "        target_label: __address__"
        echo "        replacement: '$SHARD1'"
        echo "      - source_labels: [__tmp_shard]"
        echo "        regex: '1'"
        echo "        target_label: __address__"
        echo "        replacement: '$SHARD2'"
    } >"$W/prometheus-shards.yml"
    if ! promtool check config "$W/prometheus-shards.yml" >/dev/null; then
        fail "promtool check config $W/prometheus-shards.yml"
        return 0
    fi
    start_bg prometheus-shards "$W/prometheus-shards.log" prometheus --config.file="$W/prometheus-shards.yml" \
        --storage.tsdb.path="$W/prometheus-shards-data" --web.listen-address="$PROM_SHARDS"
    if ! wait_until 100 0.3 http_ok "http://$PROM_SHARDS/-/ready"; then
        fail "Prometheus for the shards not ready on $PROM_SHARDS (see $W/prometheus-shards.log)"
        stop prometheus-shards || true
        return 0
    fi
    py prom-wait --prom "http://$PROM_SHARDS" --tries 30 --sleep 2 'count(up{job="shards"} == 1) == 2' || true
    py prom-wait --prom "http://$PROM_SHARDS" --tries 30 --sleep 2 \
        "count(count by (domain) (autodiscover_probe_success{job=\"shards\"})) == $(scenario_list | wc -l)" || true
    py prom-wait --prom "http://$PROM_SHARDS" --tries 30 --sleep 2 \
        "count(count by (domain) (autodiscover_probe_success{job=\"probe-hashmod\"})) == $n" || true
    py prom-wait --prom "http://$PROM_SHARDS" --tries 10 --sleep 2 \
        'autodiscover_outcome{job="probe-hashmod",domain="companyb.e2e.test",outcome="certificate_prompt"} == 1' || true
    stop prometheus-shards || true
}

web_config_checks() {
    section "serve --web.config.file (TLS and basic auth)"
    cat >"$W/web-config.yml" <<EOF
tls_server_config:
  cert_file: $W/pki/exporter.chain.pem
  key_file: $W/pki/exporter.key
basic_auth_users:
  $WEB_USER: '$WEB_HASH'
EOF
    start_exporter secure "$SECURE" --web.config.file "$W/web-config.yml"
    local url=https://$SECURE/metrics code
    if wait_until 50 0.2 curl -s -o /dev/null --max-time 2 --cacert "$W/pki/root.pem" "https://$SECURE/"; then
        code=$(http_code "$url" --cacert "$W/pki/root.pem")
        if [[ $code == 401 ]]; then pass "https /metrics without credentials answers 401"; else fail "https /metrics without credentials answers $code, want 401"; fi
        code=$(http_code "$url" --cacert "$W/pki/root.pem" -u "$WEB_USER:wrong")
        if [[ $code == 401 ]]; then pass "https /metrics with a wrong password answers 401"; else fail "https /metrics with a wrong password answers $code, want 401"; fi
        code=$(http_code "$url" --cacert "$W/pki/root.pem" -u "$WEB_USER:$WEB_PASSWORD")
        if [[ $code == 200 ]]; then pass "https /metrics with credentials answers 200"; else fail "https /metrics with credentials answers $code, want 200"; fi
        code=$(http_code "http://$SECURE/metrics" -u "$WEB_USER:$WEB_PASSWORD")
        if [[ $code != 200 ]]; then pass "plain http is not served when TLS is configured ($code)"; else fail "plain http /metrics answers 200 although TLS is configured"; fi
    else
        fail "exporter with --web.config.file does not answer https on $SECURE (see $W/secure.log)"
    fi
    stop_exporter secure
}

demo_checks() {
    section "demo"
    start_bg demo "$W/demo.log" "$BIN" demo --web.listen-address "$DEMO"
    if wait_until 60 0.5 bash -c "curl -s --max-time 5 http://$DEMO/metrics | grep -q '^autodiscover_outcome{'"; then
        sleep 3 # let the first round of simulated probes finish
        curl -s --max-time 10 "http://$DEMO/metrics" >"$W/demo-metrics.txt" || true
        promtool_metrics_clean "$W/demo-metrics.txt" "demo /metrics"
        py demo-metrics "$W/demo-metrics.txt" || true
        check "demo status page answers 200" http_ok "http://$DEMO/"
    else
        fail "demo shows no autodiscover_outcome on $DEMO within 30s (see $W/demo.log)"
    fi
    stop_exporter demo
}

prom_has() { "$PY" "$E2E/checks.py" prom-wait --prom "http://$PROM" --tries 1 --sleep 0 "$1" >/dev/null 2>&1; }

world_change() {
    section "World change: a new DNS provider lost companyc's SRV record, website's SRV names another host"
    py prom-wait --prom "http://$PROM" --tries 30 --sleep 2 \
        'autodiscover_srv_record_present{domain="companyc.e2e.test"} == 1' || true
    stop dnsmasq || true
    write_dns_config changed
    start_dns
    dns_status _autodiscover._tcp.companyc.e2e.test SRV NXDOMAIN
    dns_expect _autodiscover._tcp.website.e2e.test SRV "0 0 443 autodiscover.companya.e2e.test."
    py prom-wait --prom "http://$PROM" --tries 40 --sleep 2 \
        'autodiscover_outcome{domain="companyc.e2e.test",outcome="not_found"} == 1' || true
    py prom-wait --prom "http://$PROM" --tries 20 --sleep 2 \
        'autodiscover_srv_record_present{domain="companyc.e2e.test"} == 0' || true
    py prom-wait --prom "http://$PROM" --tries 20 --sleep 2 \
        'autodiscover_endpoint_info{domain="website.e2e.test",step="srv_record",url=~"(?i)https://autodiscover.companya.e2e.test/autodiscover/autodiscover.xml"} == 1' || true
}

bad_reload() {
    section "Reload with a broken config keeps the old one"
    cp "$W/exporter.yml" "$W/exporter.good.yml"
    printf 'defaults:\n  interval: 15s\n  no_such_key: 1\ndomains: []\n' >"$W/exporter.yml"
    local code
    code=$(http_code "http://$EXPORTER/-/reload" -X POST)
    if [[ $code =~ ^(4|5) ]]; then pass "POST /-/reload with a broken config answers $code"; else fail "POST /-/reload with a broken config answers $code, want an error"; fi
    local v
    v=$(metric_value "http://$EXPORTER/metrics" "autodiscover_exporter_config_last_reload_successful ")
    if num_eq "$v" 0; then pass "autodiscover_exporter_config_last_reload_successful 0"; else fail "autodiscover_exporter_config_last_reload_successful is '$v', want 0"; fi
    v=$(metric_value "http://$EXPORTER/metrics" "autodiscover_exporter_domains ")
    if num_eq "$v" "$(scenario_list | wc -l)"; then pass "the old config stays in force ($v domains)"; else fail "autodiscover_exporter_domains is '$v' after a failed reload"; fi
    py prom-wait --prom "http://$PROM" --tries 15 --sleep 1 'autodiscover_exporter_config_last_reload_successful == 0' || true
}

good_reload() {
    section "Reload by SIGHUP with the good config"
    cp "$W/exporter.good.yml" "$W/exporter.yml"
    kill -HUP "${PID[exporter]}"
    if wait_until 50 0.2 bash -c "curl -s --max-time 5 http://$EXPORTER/metrics | grep -qE '^autodiscover_exporter_config_last_reload_successful 1(\\.0)?$'"; then
        pass "SIGHUP reloads the config (autodiscover_exporter_config_last_reload_successful 1)"
    else
        fail "autodiscover_exporter_config_last_reload_successful is not back to 1 within 10s of SIGHUP"
    fi
}

prometheus_checks() {
    section "Prometheus: scrape, rules, dashboards"
    py prom-wait --prom "http://$PROM" --tries 30 --sleep 1 'up{job="autodiscover"} == 1' || true
    py prom-wait --prom "http://$PROM" --tries 10 --sleep 1 'autodiscover_outcome{domain="bücher.e2e.test",outcome="ok"} == 1' || true
    py prom-wait --prom "http://$PROM" --tries 10 --sleep 1 'autodiscover_step_reached{domain="cloud.e2e.test"} == 5' || true
    # Let rate() windows and the rule evaluations see a few samples.
    local wait_s=$((PROM_SINCE + 30 - $(date +%s)))
    if [[ $wait_s -gt 0 ]]; then sleep "$wait_s"; fi
    shopt -s nullglob
    local dashboards=("$ROOT"/dashboards/*.json)
    shopt -u nullglob
    local extra=()
    [[ -n $RULE_COUNT ]] && extra=(--expect-rules "$RULE_COUNT")
    py prom-queries --prom "http://$PROM" --allow "$E2E/expected-empty.txt" --since "$PROM_SINCE" \
        --readme "$ROOT/README.md" "${extra[@]}" "${dashboards[@]}" || true
    if [[ ${#RULE_FILES[@]} -gt 0 ]]; then
        py prom-alerts --prom "http://$PROM" --expected "$E2E/expected-alerts.txt" --tries 30 --sleep 2 || true
    else
        skip "no alert rules yet: alerts that should fire are not checked"
    fi
}

# ------------------------------------------------------------------------------------------------
# History of changes, DNS delegation, and the pages in a browser (dns/delegation-*.conf,
# browser.py). The world change moves companyc to new name servers as it loses its SRV record.

history_config() { # the exporter keeps its history in the work dir
    printf 'storage:\n  path: %s\n  retention: 7d\n' "$W/history.db" >>"$W/exporter.yml"
}

history_has_change() { # history_has_change ADDR DOMAIN KIND: the domain's timeline has a change of KIND
    curl -s --max-time 5 -H 'Accept: application/json' "http://$1/domains/$2" |
        "$PY" -c 'import json, sys
d = json.load(sys.stdin) or {}
sys.exit(0 if any(c.get("kind") == sys.argv[1] for c in d.get("history") or []) else 1)' "$3"
}

history_checks() {
    section "History: the DNS provider change in the timeline, the metrics and the log"
    local d=companyc.e2e.test v
    if wait_until 60 1 history_has_change "$EXPORTER" "$d" verdict; then
        pass "/domains/$d lists the verdict change in its history"
    else
        fail "/domains/$d has no verdict change in its history within 60s"
    fi
    fetch "http://$EXPORTER/domains/$d" "$W/history-$d.json" -H 'Accept: application/json' >/dev/null
    "$PY" - "$W/history-$d.json" >"$W/history.out" 2>&1 <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
h = d.get("history") or []
def has(kind, before=None, after=None):
    return any(c["kind"] == kind and (before is None or c["before"] == before)
               and (after is None or c["after"] == after) for c in h)
checks = [
    (has("nameservers", "ns1.old-dns.example,ns2.old-dns.example", "ns1.new-dns.example,ns2.new-dns.example"),
     "history: NS changed from the old provider's name servers to the new one's"),
    (has("soa_serial", "2024010101", "2026113001"), "history: SOA serial 2024010101 -> 2026113001"),
    (has("srv_records", after=""), "history: SRV record lost"),
    (has("verdict", "redirect_prompt", "not_found"), "history: verdict redirect_prompt -> not_found"),
    (isinstance(d.get("delegation_changed_at"), int), "JSON: delegation_changed_at is set"),
    (any(f["code"] == "regressed_after_delegation_change" for f in d.get("findings") or []),
     "finding regressed_after_delegation_change links the regression to the NS change"),
    ((d.get("delegation") or {}).get("nameservers") == ["ns1.new-dns.example", "ns2.new-dns.example"],
     "report: delegation.nameservers is the new NS set"),
]
for ok, what in checks:
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok else f" -- {json.dumps(h)[:600]}"))
PY
    cat "$W/history.out"
    cat "$W/history.out" >>"$RESULTS"
    curl -s --max-time 10 "http://$EXPORTER/metrics" >"$W/metrics-history.txt"
    check "/metrics: autodiscover_domain_nameservers_info of $d names the new name servers" \
        grep -qE "^autodiscover_domain_nameservers_info\{[^}]*domain=\"$d\"[^}]*nameservers=\"ns1.new-dns.example,ns2.new-dns.example\"" "$W/metrics-history.txt"
    check "/metrics: autodiscover_domain_soa_serial of $d is 2026113001" \
        grep -qE "^autodiscover_domain_soa_serial\{[^}]*domain=\"$d\"[^}]*\} 2026113001$" "$W/metrics-history.txt"
    check "/metrics: autodiscover_domain_delegation_changed_timestamp_seconds of $d" \
        grep -qE "^autodiscover_domain_delegation_changed_timestamp_seconds\{[^}]*domain=\"$d\"" "$W/metrics-history.txt"
    check "/metrics: no delegation change for companya.e2e.test" \
        bash -c "! grep -qE '^autodiscover_domain_delegation_changed_timestamp_seconds\\{[^}]*domain=\"companya.e2e.test\"' '$W/metrics-history.txt'"
    check "/metrics: autodiscover_regressed_after_delegation_change of $d is 1" \
        grep -qE "^autodiscover_regressed_after_delegation_change\{[^}]*domain=\"$d\"[^}]*\} 1$" "$W/metrics-history.txt"
    v=$(metric_value "http://$EXPORTER/metrics" "autodiscover_exporter_history_writable ")
    if num_eq "$v" 1; then pass "autodiscover_exporter_history_writable 1"; else fail "autodiscover_exporter_history_writable is '$v'"; fi
    check "the log has the verdict change of $d at info level, with before and after" \
        grep -qE "level=info msg=\"verdict changed\" domain=$d before=redirect_prompt after=not_found" "$W/exporter.log"
    check "the history file exists" test -s "$W/history.db"

    section "History: a second exporter on the same file knows the change"
    start_exporter history-restart "$SHARD1"
    if wait_until 100 0.2 http_ok "http://$SHARD1/-/ready" && wait_until 60 0.5 history_has_change "$SHARD1" "$d" nameservers; then
        pass "a freshly started exporter shows the NS change of $d from the history file"
    else
        fail "a freshly started exporter does not show the NS change of $d (see $W/history-restart.log)"
    fi
    stop_exporter history-restart

    browser_checks
}

browser_checks() {
    section "Status and domain pages in headless Chromium (1400x900 and 390x844)"
    local need=()
    command -v chromium >/dev/null || need+=(chromium)
    "$PY" -c 'import websocket' 2>/dev/null || need+=(python3-websocket)
    if ((${#need[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >"$W/apt-browser.log" 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >>"$W/apt-browser.log" 2>&1; } ||
            { fail "cannot install ${need[*]} (see $W/apt-browser.log)"; return; }
    fi
    mkdir -p "$E2E/artifacts"
    local rc=0
    timeout 300 "$PY" "$E2E/browser.py" --url "http://$EXPORTER" --out "$E2E/artifacts" --changed companyc.e2e.test \
        --changed-verdict not_found --customer CompanyB --profile-dir "$W" >"$W/browser.out" 2>&1 || rc=$?
    cat "$W/browser.out"
    cat "$W/browser.out" >>"$RESULTS"
    if [[ $rc == 124 ]]; then fail "browser.py timed out"; fi
    pass "screenshots kept in $E2E/artifacts"
}

# ------------------------------------------------------------------------------------------------
# Main

main() {
    [[ $(id -u) == 0 ]] || { echo "run.sh must run as root (nginx binds ports 80 and 443)" >&2; exit 2; }
    exec 9>"$LOCK"
    flock -n 9 || { echo "another run of the suite holds $LOCK" >&2; exit 2; }
    touch "$STATE"
    kill_leftovers
    install_packages
    services_install
    W=$(mktemp -d "$WORKDIR_PREFIX.XXXXXX")
    RESULTS=$W/results.log
    : >"$RESULTS"
    echo "$W - dir" >>"$STATE" # removed by the next run if this one is killed before its cleanup
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    echo "work dir: $W"

    section "Preflight"
    preflight_ports
    if [[ $INFRA_ONLY != 1 ]]; then build_binary; fi

    section "Test PKI"
    "$E2E/pki.sh" "$W/pki" || die "pki.sh"
    pass "root CA, intermediate CA and leaves issued in $W/pki"
    services_pki
    services_files

    section "Servers"
    write_dns_config initial
    start_dns
    pass "dnsmasq answers on $DNS"
    start_nginx
    pass "nginx serves 127.0.10.1-11 and 127.0.10.20-28"
    start_dovecot
    infra_checks
    services_infra_checks
    classify_alerts
    promtool_rules

    if [[ $INFRA_ONLY == 1 ]]; then
        section "Prometheus (infrastructure only: scraping itself)"
        start_prometheus "$PROM" prometheus
        py prom-wait --prom "http://$PROM" --tries 30 --sleep 1 'up{job="prometheus"} == 1' || true
        if [[ ${#RULE_FILES[@]} -gt 0 ]]; then
            check "Prometheus loaded the alert rules" bash -c \
                "curl -s http://$PROM/api/v1/rules | $PY -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"data\"][\"groups\"] else 1)'"
        fi
        return 0
    fi

    py serve-config --scenarios "$E2E/scenarios.json" --nameserver "$DNS" --ca-file "$W/pki/root.pem" \
        --out "$W/exporter.yml" || die "serve-config"
    services_config
    history_config
    check_cli
    check_config_cmd

    section "serve"
    start_exporter exporter "$EXPORTER" --web.enable-lifecycle
    if wait_until 100 0.2 http_ok "http://$EXPORTER/-/ready"; then
        pass "exporter ready on $EXPORTER"
    else
        die "exporter not ready on $EXPORTER within 20s (see $W/exporter.log)"
    fi
    start_prometheus "$EXPORTER" autodiscover
    serve_checks
    services_checks
    shard_checks
    web_config_checks
    demo_checks
    world_change
    history_checks
    bad_reload
    prometheus_checks
    good_reload
    section "Shutdown"
    stop_exporter exporter
}

main "$@"
