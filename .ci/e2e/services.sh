# shellcheck shell=bash
# After Autodiscover (SPEC §3.4) in the end-to-end suite, sourced by run.sh.
#
#   dovecot (127.0.10.40-41)   mail.mailhost: IMAP 143 (STARTTLS), POP3 995 (implicit TLS);
#                              smtp.mailhost: SMTP submission 587 (STARTTLS) with a certificate
#                              for another name
#   nginx (127.0.10.42-44)     autodiscover.mailhost answers settings without authentication;
#                              autodiscover.ewsauth answers them to Basic credentials only; the
#                              EWS vhost mail.ewsauth presents autodiscover.ewsauth's certificate
#
# The exporter probes them with a credentials file (mode 0600) for ewsauth; the checks make sure
# the settings, the service endpoints, the service prompts and their metrics are right, and that
# the password appears nowhere in what the exporter prints, serves or logs.

SERVICES_USER=probe@ewsauth.e2e.test
SERVICES_PASSWORD=e2e-probe-password

services_install() { # dovecot (IMAP, POP3, submission) from Debian, when missing
    local need=()
    command -v dovecot >/dev/null || need+=(dovecot-core)
    [[ -e /usr/lib/dovecot/imap-login ]] || need+=(dovecot-imapd)
    [[ -e /usr/lib/dovecot/pop3-login ]] || need+=(dovecot-pop3d)
    [[ -e /usr/lib/dovecot/submission-login ]] || need+=(dovecot-submissiond)
    [[ ${#need[@]} -eq 0 ]] && return 0
    apt_install "${need[@]}"
    # The package may start the system's dovecot on the wildcard address: the suite's one could
    # not bind then. Stop only a dovecot that listens on the suite's ports.
    if ss -Hlnt 2>/dev/null | awk '{print $4}' | grep -qE '^(0\.0\.0\.0|\*|\[::\]):(143|993|995|587)$'; then
        die "a dovecot (or another server) listens on IMAP/POP3/submission ports of every address; stop it first"
    fi
}

services_pki() { # leaves for the service hosts, issued by the suite's intermediate CA
    (
        cd "$W/pki" || exit 1
        export SAN=DNS:unused # ca.cnf reads it in every section
        leaf() {
            local name=$1 san=$2
            shift 2
            local cn=${san%%,*}
            cn=${cn#DNS:}
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key" 2>/dev/null
            openssl req -config ca.cnf -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
            SAN=$san openssl ca -batch -notext -config ca.cnf -extensions leaf_ext -in "$name.csr" \
                -out "$name.pem" "$@" 2>/dev/null
            cat "$name.pem" intermediate.pem >"$name.chain.pem"
        }
        leaf mailhost-autodiscover "DNS:autodiscover.mailhost.e2e.test"
        # The IMAP/POP3 host: right name, 5 days left (service expiry alerts fire).
        leaf mail-mailhost "DNS:mail.mailhost.e2e.test" -days 5
        # The SMTP host presents a certificate for another name (a service certificate prompt).
        leaf smtp-elsewhere "DNS:mx.elsewhere.e2e.test"
        # Exchange: the certificate lists only the autodiscover host, not mail.ewsauth (EWS).
        leaf ewsauth "DNS:autodiscover.ewsauth.e2e.test"
    ) || die "service certificates"
    pass "service certificates issued (mail.mailhost, smtp.mailhost, autodiscover.ewsauth)"
}

services_files() { # nginx include, dovecot config, the probe's credentials file
    sed -e "s#@WORK@#$W#g; s#@PKI@#$W/pki#g; s#@E2E@#$E2E#g" "$E2E/nginx/services.conf.template" \
        >"$W/nginx-services.conf"
    sed -e "s#@WORK@#$W#g; s#@PKI@#$W/pki#g" "$E2E/dovecot.conf.template" >"$W/dovecot.conf"
    mkdir -p "$W/dovecot-run" "$W/dovecot-state" "$W/dovecot-mail"
    (
        umask 077
        printf 'username: "%s"\npassword: "%s"\n' "$SERVICES_USER" "$SERVICES_PASSWORD" >"$W/ewsauth-credentials.yml"
        printf 'username: "%s"\npassword: "%s"\n' "$SERVICES_USER" "$SERVICES_PASSWORD" >"$W/open-credentials.yml"
    )
    chmod 644 "$W/open-credentials.yml"
}

dovecot_answers() { timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.10.40/143 && head -c 4 <&3' 2>/dev/null | grep -q '^\* OK'; }

start_dovecot() {
    dovecot -n -c "$W/dovecot.conf" >"$W/dovecot-n.out" 2>&1 || { cat "$W/dovecot-n.out"; die "dovecot -n (see above)"; }
    start_bg dovecot "$W/dovecot.out" dovecot -F -c "$W/dovecot.conf"
    wait_until 50 0.2 dovecot_answers || die "dovecot does not answer on 127.0.10.40:143 (see $W/dovecot.log)"
    track_children dovecot
    pass "dovecot serves IMAP, POP3 and submission on 127.0.10.40-41"
}

starttls_expect() { # starttls_expect PROTO IP PORT NAME VERIFY_CODE
    local got
    got=$(timeout 10 openssl s_client -connect "$2:$3" -starttls "$1" -verify_hostname "$4" \
        -CAfile "$W/pki/root.pem" </dev/null 2>&1 | sed -n 's/.*Verify return code: \([0-9]*\).*/\1/p' | head -n 1)
    if [[ $got == "$5" ]]; then pass "starttls $1: $4 at $2:$3 -> verify code $5"; else fail "starttls $1: $4 at $2:$3 -> verify code '$got', want $5"; fi
}

services_infra_checks() {
    section "Infrastructure: services after Autodiscover"
    dns_expect autodiscover.mailhost.e2e.test A "127.0.10.42"
    dns_expect smtp.mailhost.e2e.test A "127.0.10.41"
    dns_expect mail.ewsauth.e2e.test A "127.0.10.44"
    starttls_expect imap 127.0.10.40 143 mail.mailhost.e2e.test 0
    starttls_expect smtp 127.0.10.41 587 smtp.mailhost.e2e.test 62
    tls_expect 127.0.10.44 mail.ewsauth.e2e.test 62
    local code
    code=$(timeout 10 openssl s_client -connect 127.0.10.40:995 -verify_hostname mail.mailhost.e2e.test \
        -CAfile "$W/pki/root.pem" </dev/null 2>&1 | sed -n 's/.*Verify return code: \([0-9]*\).*/\1/p' | head -n 1)
    if [[ $code == 0 ]]; then pass "pop3s: mail.mailhost.e2e.test at 127.0.10.40:995 -> verify code 0"; else fail "pop3s at 127.0.10.40:995 -> verify code '$code'"; fi
    local ad=https://autodiscover.ewsauth.e2e.test/Autodiscover/Autodiscover.xml
    http_expect POST "$ad" 127.0.10.43 401 'WWW-Authenticate: Basic realm="autodiscover.ewsauth.e2e.test"' "X-SOAP-Enabled: True"
    code=$(curl -s -o "$W/ewsauth-settings.xml" -w '%{http_code}' --max-time 10 --cacert "$W/pki/root.pem" \
        --resolve autodiscover.ewsauth.e2e.test:443:127.0.10.43 -u "$SERVICES_USER:$SERVICES_PASSWORD" -X POST "$ad" || true)
    if [[ $code == 200 ]] && grep -q '<EwsUrl>https://mail.ewsauth.e2e.test/EWS/Exchange.asmx</EwsUrl>' "$W/ewsauth-settings.xml"; then
        pass "http: POST $ad with Basic credentials -> 200 settings naming mail.ewsauth"
    else
        fail "http: POST $ad with Basic credentials -> $code"
    fi
    http_expect POST https://autodiscover.mailhost.e2e.test/Autodiscover/Autodiscover.xml 127.0.10.42 200 "Content-Type: text/xml"
    http_expect GET https://autodiscover.ewsauth.e2e.test/OAB/e2e/ 127.0.10.43 401 "WWW-Authenticate: NTLM"
}

services_config() { # the exporter's config names the credentials file written above
    sed -i "s#@WORK@#$W#g" "$W/exporter.yml"
    check "exporter.yml names the ewsauth credentials file" grep -q "credentials_file: \"$W/ewsauth-credentials.yml\"" "$W/exporter.yml"
}

services_checks() {
    section "After Autodiscover: settings, services, credentials"
    local rc name
    for name in services-ews services-mailhost; do
        rc=0
        timeout 60 "$BIN" check "$(scenario_domain "$name")" --config.file "$W/exporter.yml" --output json \
            >"$W/check-$name-config.json" 2>"$W/check-$name-config.err" || rc=$?
        py report --scenarios "$E2E/scenarios.json" --context "check --config.file" --exit-code "$rc" \
            "$name" "$W/check-$name-config.json" || true
        py services --scenarios "$E2E/scenarios.json" --context "check --config.file" "$name" \
            "$W/check-$name-config.json" || true
        py services --scenarios "$E2E/scenarios.json" --context "/domains" "$name" "$W/domain-$name.json" || true
    done
    rc=0
    timeout 60 "$BIN" check ewsauth.e2e.test --config.file "$W/exporter.yml" --output text \
        >"$W/check-services-ews.txt" 2>&1 || rc=$?
    check "check text shows the EWS service prompt" grep -q 'Certificate alert after Autodiscover at: ews mail.ewsauth.e2e.test' "$W/check-services-ews.txt"
    check "check text says the credentials are not shown" grep -q 'with Basic authentication (credentials not shown)' "$W/check-services-ews.txt"
    py services-metrics --scenarios "$E2E/scenarios.json" "$W/metrics.txt" || true

    # A group-readable credentials file is refused with a clear error (line, column, chmod 600).
    sed -e "s#$W/ewsauth-credentials.yml#$W/open-credentials.yml#" "$W/exporter.yml" >"$W/exporter-open.yml"
    rc=0
    "$BIN" check-config "$W/exporter-open.yml" >"$W/check-config-open.out" 2>&1 || rc=$?
    if [[ $rc == 2 ]] && grep -q 'chmod 600' "$W/check-config-open.out" && grep -qE ':[0-9]+:[0-9]+: ' "$W/check-config-open.out"; then
        pass "check-config refuses a group-readable credentials file (exit 2, line:column, chmod 600)"
    else
        fail "check-config on a group-readable credentials file -> exit $rc: $(head -c 300 "$W/check-config-open.out")"
    fi

    # The password and its Basic encoding appear nowhere the exporter writes or serves.
    local basic leaks
    basic=$(printf '%s' "$SERVICES_USER:$SERVICES_PASSWORD" | base64 -w0)
    curl -s --max-time 10 "http://$EXPORTER/" >"$W/services-index.html" || true
    curl -s --max-time 10 "http://$EXPORTER/domains/ewsauth.e2e.test" -H 'Accept: text/html' >"$W/services-domain.html" || true
    curl -s --max-time 30 "http://$EXPORTER/probe?target=ewsauth.e2e.test&debug=true" >"$W/services-probe-debug.txt" || true
    leaks=$(grep -l -F -e "$SERVICES_PASSWORD" -e "$basic" "$W"/*.json "$W"/*.txt "$W"/*.html "$W"/*.log \
        "$W"/*.err "$W"/*.out 2>/dev/null | grep -v -e 'ewsauth-settings' || true)
    if [[ -z $leaks ]]; then
        pass "the probe password appears in no output, page, metric or log of the exporter"
    else
        fail "the probe password leaked into: $leaks"
    fi
}

scenario_domain() {
    "$PY" -c 'import json,sys
for s in json.load(open(sys.argv[1]))["scenarios"]:
    if s["name"] == sys.argv[2]: print(s["domain"])' "$E2E/scenarios.json" "$1"
}
