# shellcheck shell=bash
# The benchmark world, sourced by benches/scale/run.sh, benches/vs-blackbox/run.sh and
# benches/ab/run.sh.
#
#   dnsmasq $BENCH_DNS (127.0.0.1:5398) every name under scale.test -> 127.0.20.1 (wildcard),
#                                       office365.com / outlook.com -> 127.0.20.2
#   nginx 127.0.20.1:443/80             one Exchange server (401 with Negotiate/NTLM on the
#                                       Autodiscover path, .ci/e2e/nginx/exchange.conf), a
#                                       certificate for *.scale.test and scale.test; port 80: 404
#   nginx 127.0.20.2:443/80             a simulated Microsoft 365 (.ci/e2e/nginx/microsoft365.conf):
#                                       mailboxes of domains whose name ends in an even digit are
#                                       in the cloud (200 JSON naming outlook.office365.com), the
#                                       others are unknown (302)
#
# So half the domains end at step microsoft365 (every one of them POSTs to the same host), the
# other half walk the classic steps: https://D answers 401 behind a valid certificate (ok at
# root_domain), autodiscover.D gets a name mismatch (the wildcard covers one label), http gives
# 404, no SRV record. Certificates come from .ci/e2e/pki.sh. Loopback only; every process is
# started in the background and stopped by pid (world_stop).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E=$BENCH_ROOT/.ci/e2e
BENCH_DNS_ADDR=${BENCH_DNS_ADDR:-127.0.0.1}
BENCH_DNS_PORT=${BENCH_DNS_PORT:-5398}
BENCH_DNS=$BENCH_DNS_ADDR:$BENCH_DNS_PORT
declare -a WORLD_PIDS=()

world_need() { # installs the Debian packages it needs when missing
    local need=()
    command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
    command -v nginx >/dev/null || need+=(nginx)
    command -v openssl >/dev/null || need+=(openssl)
    command -v curl >/dev/null || need+=(curl)
    command -v python3 >/dev/null || need+=(python3)
    command -v dig >/dev/null || need+=(dnsutils)
    [[ ${#need[@]} -eq 0 ]] && return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }
}

world_bg() { # world_bg LOG COMMAND...: starts a process, remembers its pid
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    WORLD_PIDS+=("$!")
}

world_wait() { # world_wait TRIES SLEEP COMMAND...
    local tries=$1 pause=$2 i
    shift 2
    for ((i = 0; i < tries; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep "$pause"
    done
    return 1
}

world_pki() { # world_pki DIR: the e2e PKI plus a leaf for *.scale.test
    local dir=$1
    "$E2E/pki.sh" "$dir" >/dev/null
    (
        cd "$dir" || exit 1
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out scale.key 2>/dev/null
        SAN=DNS:unused openssl req -config ca.cnf -new -key scale.key -subj "/CN=*.scale.test" -out scale.csr
        SAN="DNS:*.scale.test,DNS:scale.test" openssl ca -batch -notext -config ca.cnf \
            -extensions leaf_ext -in scale.csr -out scale.pem 2>/dev/null
        cat scale.pem intermediate.pem >scale.chain.pem
    )
}

world_start() { # world_start WORKDIR: PKI, dnsmasq and nginx
    local w=$1 busy
    busy=$(ss -Hlntup 2>/dev/null | awk -v dns="$BENCH_DNS" '$5 ~ /^127\.0\.20\.[0-9]+:(80|443)$/ || $5 == dns' || true)
    if [[ -n $busy ]]; then
        echo "the benchmark world's addresses are taken (another run?):" >&2
        echo "$busy" >&2
        return 1
    fi
    world_pki "$w/pki"
    cat >"$w/dnsmasq.conf" <<EOF
address=/scale.test/127.0.20.1
address=/office365.com/127.0.20.2
address=/outlook.com/127.0.20.2
EOF
    world_bg "$w/dnsmasq.out" dnsmasq --keep-in-foreground --conf-file="$w/dnsmasq.conf" \
        --no-resolv --no-hosts --listen-address="$BENCH_DNS_ADDR" --port="$BENCH_DNS_PORT" --bind-interfaces \
        --user=root --pid-file="$w/dnsmasq.pid" --local-ttl=0 --cache-size=0
    world_wait 50 0.1 bash -c "dig +short +time=1 +tries=1 @$BENCH_DNS_ADDR -p $BENCH_DNS_PORT d1.scale.test A | grep -qx 127.0.20.1" ||
        { echo "dnsmasq does not answer on $BENCH_DNS" >&2; return 1; }
    mkdir -p "$w/nginx-tmp"
    cat >"$w/nginx.conf" <<EOF
user root root;
worker_processes 1;
pid $w/nginx.pid;
error_log $w/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $w/nginx-tmp/body;
    proxy_temp_path $w/nginx-tmp/proxy;
    fastcgi_temp_path $w/nginx-tmp/fastcgi;
    uwsgi_temp_path $w/nginx-tmp/uwsgi;
    scgi_temp_path $w/nginx-tmp/scgi;
    server_tokens off;
    default_type application/octet-stream;
    ssl_protocols TLSv1.2 TLSv1.3;
    map \$uri \$m365_url {
        default "";
        "~*^/autodiscover/autodiscover\\.json/v1\\.0/[^/@]+@d[0-9]*[02468]\\.scale\\.test\\.?\$" "https://outlook.office365.com/autodiscover/autodiscover.xml";
    }
    map \$arg_protocol \$m365_protocol_ok {
        default 0;
        "~*^autodiscoverv1\$" 1;
    }
    server {
        listen 127.0.20.1:443 ssl;
        ssl_certificate $w/pki/scale.chain.pem;
        ssl_certificate_key $w/pki/scale.key;
        include $E2E/nginx/exchange.conf;
    }
    server {
        listen 127.0.20.1:80;
        location / { return 404; }
    }
    server {
        listen 127.0.20.2:443 ssl;
        ssl_certificate $w/pki/microsoft365.chain.pem;
        ssl_certificate_key $w/pki/microsoft365.key;
        include $E2E/nginx/microsoft365.conf;
    }
    server {
        listen 127.0.20.2:80;
        location ~* ^/autodiscover/autodiscover\\.xml\$ {
            return 302 https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml;
        }
    }
}
EOF
    nginx -t -q -c "$w/nginx.conf" -p "$w" -e "$w/nginx-error.log" || return 1
    world_bg "$w/nginx.out" nginx -c "$w/nginx.conf" -p "$w" -e "$w/nginx-error.log" -g 'daemon off;'
    world_wait 50 0.1 curl -s -o /dev/null --max-time 2 http://127.0.20.1/ ||
        { echo "nginx does not answer on 127.0.20.1" >&2; return 1; }
}

world_stop() { # stops every process world_bg started, newest first, by pid
    local i pid
    for ((i = ${#WORLD_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${WORLD_PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        world_wait 100 0.1 bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    WORLD_PIDS=()
}

# CPU seconds (user + system) a process has used: fields 14 and 15 of /proc/PID/stat.
cpu_seconds() {
    local stat
    stat=$(cat "/proc/$1/stat") || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    awk -v u="${12}" -v s="${13}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (u + s) / hz }'
}

# run_batch URLFILE CONCURRENCY [MAX_TIME]: GETs every URL, CONCURRENCY at a time, each within
# MAX_TIME seconds (60); prints how many did not answer 200.
run_batch() {
    xargs -P "$2" -n 1 curl -s -o /dev/null --max-time "${3:-60}" -w '%{http_code}\n' <"$1" |
        grep -vc '^200$' || true
}

# steady_rounds ROUNDS COMMAND...: runs `COMMAND... R` for R = 1..ROUNDS, each round starting at
# least 12 s after the previous one, as scrapes of one target do: the exporter shares what it
# observed for 10 s, so no domain reuses its own last probe (at a real interval it could not).
steady_rounds() {
    local rounds=$1 r started left
    shift
    for ((r = 1; r <= rounds; r++)); do
        started=$SECONDS
        "$@" "$r"
        left=$((12 - (SECONDS - started)))
        if ((left > 0)); then sleep "$left"; fi
    done
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# The config of the exporter for domains d1..dN of scale.test.
exporter_config() { # exporter_config N WORKDIR INTERVAL
    local n=$1 w=$2 interval=$3
    {
        printf 'defaults:\n  interval: %s\n  timeout: 20s\n' "$interval"
        printf 'resolver:\n  nameservers: ["%s"]\n' "$BENCH_DNS"
        printf 'tls:\n  ca_file: %s\n' "$w/pki/root.pem"
        printf 'microsoft365:\n  max_queries_per_second: 1000\n'
        printf 'storage:\n  path: %s\n' "$w/history.db"
        printf 'domains:\n'
        seq 1 "$n" | awk '{ printf "  - domain: d%d.scale.test\n", $1 }'
    } >"$w/exporter.yml"
}

# The config of the exporter with no configured domain (no background probing) and any
# /probe target allowed: what the side-by-side scripts probe through.
target_config() { # target_config WORKDIR TIMEOUT [DIR]: DIR/exporter.yml (DIR: WORKDIR)
    local w=$1 timeout=$2 dir=${3:-$1}
    {
        printf 'defaults:\n  timeout: %s\n' "$timeout"
        printf 'resolver:\n  nameservers: ["%s"]\n' "$BENCH_DNS"
        printf 'tls:\n  ca_file: %s\n' "$w/pki/root.pem"
        printf 'microsoft365:\n  max_queries_per_second: 1000\n'
        printf 'allow_any_target: true\n'
        printf 'storage:\n  path: %s\n' "$dir/history.db"
        printf 'domains: []\n'
    } >"$dir/exporter.yml"
}

# The exporter binary's path: $AUTODISCOVER_BIN, or this checkout's release build.
exporter_binary() { # BIN=$(exporter_binary)
    if [[ -n ${AUTODISCOVER_BIN:-} ]]; then
        realpath "$AUTODISCOVER_BIN"
    else
        (cd "$BENCH_ROOT" && cargo build --release --locked -q >&2) &&
            echo "$BENCH_ROOT/target/release/autodiscover-exporter"
    fi
}

stop_pid() { # stop_pid PID [TRIES]: TERM, then KILL after TRIES x 0.1 s (default 150)
    local pid=$1 tries=${2:-150}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    world_wait "$tries" 0.1 bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

on_exit() { # on_exit FUNCTION: run FUNCTION when the script ends, also on Ctrl-C and TERM
    # shellcheck disable=SC2064
    trap "$1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
