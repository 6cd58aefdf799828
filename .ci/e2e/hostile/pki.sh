#!/usr/bin/env bash
# Builds the hostile world's certificates in directory $1 (ECDSA P-256, fast to generate):
#   root.pem, root.key           the only trust anchor (tls.ca_file)
#   <name>.key, <name>.chain.pem a leaf issued by the root, and what the server presents
#   sans.*                       a leaf with 10,000 subjectAltNames (autodiscover.sans.hostile.test last)
#   chain.*                      a leaf under 49 intermediates: the server presents 50 certificates
set -euo pipefail

dir=$1
mkdir -p "$dir"
cd "$dir"

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

key root
openssl req -x509 -new -key root.key -sha256 -days 30 -subj "/CN=Hostile World Root CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out root.pem 2>/dev/null

serial=1000
issue() { # issue NAME ISSUER EXTFILE: a certificate for NAME.key signed by ISSUER
    local name=$1 issuer=$2 ext=$3
    serial=$((serial + 1))
    openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr" 2>/dev/null
    openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -set_serial "$serial" \
        -days 30 -sha256 -extfile "$ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr"
}

leaf() { # leaf NAME SAN...: a leaf for these DNS names, issued by the root; chain = leaf alone
    local name=$1 san="" n
    shift
    for n in "$@"; do san+="${san:+,}DNS:$n"; done
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "$san" >"$name.ext"
    key "$name"
    issue "$name" root "$name.ext"
    cp "$name.pem" "$name.chain.pem"
}

leaf exchange autodiscover.companya.hostile.test mail.companya.hostile.test autodiscover.flood.hostile.test
leaf www-prompt www.prompt.hostile.test
leaf m365 m365.hostile.test
leaf slowdrip autodiscover.slowdrip.hostile.test slowdrip.hostile.test
leaf endless autodiscover.endless.hostile.test endless.hostile.test

# 10,000 names, the one asked for last.
{
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName='
    for ((i = 1; i < 10000; i++)); do printf 'DNS:name%d.sans.hostile.test,' "$i"; done
    printf 'DNS:autodiscover.sans.hostile.test\n'
} >sans.ext
key sans
issue sans root sans.ext
cp sans.pem sans.chain.pem

# root -> int1 -> ... -> int49 -> leaf: 50 certificates sent by the server.
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >ca.ext
prev=root
for ((i = 1; i <= 49; i++)); do
    key "int$i"
    issue "int$i" "$prev" ca.ext
    prev=int$i
done
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:autodiscover.chain.hostile.test\n' >chain.ext
key chain
issue chain int49 chain.ext
{
    cat chain.pem
    for ((i = 49; i >= 1; i--)); do cat "int$i.pem"; done
} >chain.chain.pem
