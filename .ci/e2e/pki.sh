#!/usr/bin/env bash
# Builds the test PKI of the end-to-end suite in directory $1:
#   root.pem                 root CA (the only trust anchor, passed with --ca-file / tls.ca_file)
#   intermediate.pem         intermediate CA, issued by the root, issues every leaf below
#   <name>.key, <name>.pem   leaf key and certificate
#   <name>.chain.pem         leaf + intermediate, what a server presents
#   intermediate.der         the intermediate in DER, what http://aia.e2e.test/intermediate.der serves
#                            (the AIA caIssuers URL of the leaves issued with LEAF_EXT=leaf_aia_ext)
# Leaves: see the list at the bottom. Keys are ECDSA P-256 (fast to generate).
set -euo pipefail

dir=$1
mkdir -p "$dir/ca/newcerts" "$dir/rootca/newcerts"
cd "$dir"
: >ca/index.txt
echo 1000 >ca/serial
: >rootca/index.txt
echo 0100 >rootca/serial

# Where the intermediate can be downloaded (Authority Information Access, caIssuers): served
# over plain http by nginx at 127.0.10.26 (aia.e2e.test), as public CAs do.
AIA_URL=http://aia.e2e.test/intermediate.der

cat >ca.cnf <<CNF
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused

[ ca ]
default_ca = intermediate_ca
[ intermediate_ca ]
dir              = $dir/ca
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
serial           = \$dir/serial
certificate      = $dir/intermediate.pem
private_key      = $dir/intermediate.key
default_md       = sha256
default_days     = 365
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
[ root_ca ]
dir              = $dir/rootca
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
serial           = \$dir/serial
certificate      = $dir/root.pem
private_key      = $dir/root.key
default_md       = sha256
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
[ policy_any ]
organizationName = optional
commonName       = supplied

[ root_ext ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ intermediate_ext ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ leaf_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = \$ENV::SAN
[ leaf_aia_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = \$ENV::SAN
authorityInfoAccess    = caIssuers;URI:$AIA_URL
[ selfsigned_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
subjectAltName         = \$ENV::SAN
CNF
export SAN=DNS:unused

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

# Root and intermediate CAs, valid 2019-2100 like a real CA's: they predate every leaf below and
# outlive them, so a leaf's own dates are the only dates that can be wrong.
CA_DATES=(-startdate 20190101000000Z -enddate 21000101000000Z)
newkey root
openssl req -config ca.cnf -new -key root.key -subj "/O=autodiscover-exporter e2e/CN=E2E Test Root CA" -out root.csr
openssl ca -batch -notext -selfsign -config ca.cnf -name root_ca -extensions root_ext -in root.csr \
    -out root.pem "${CA_DATES[@]}" 2>/dev/null
newkey intermediate
openssl req -config ca.cnf -new -key intermediate.key \
    -subj "/O=autodiscover-exporter e2e/CN=E2E Test Intermediate CA" -out intermediate.csr
openssl ca -batch -notext -config ca.cnf -name root_ca -extensions intermediate_ext -in intermediate.csr \
    -out intermediate.pem "${CA_DATES[@]}" 2>/dev/null
openssl x509 -in intermediate.pem -outform DER -out intermediate.der

# [LEAF_EXT=section] leaf NAME "SAN" [openssl ca date options...]
# (LEAF_EXT: the ca.cnf extension section, leaf_ext by default; leaf_aia_ext adds the AIA URL)
leaf() {
    local name=$1 san=$2; shift 2
    local cn=${san%%,*}; cn=${cn#DNS:}; cn=${cn#IP:}
    newkey "$name"
    openssl req -config ca.cnf -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
    SAN=$san openssl ca -batch -notext -config ca.cnf -extensions "${LEAF_EXT:-leaf_ext}" -in "$name.csr" \
        -out "$name.pem" "$@" 2>/dev/null
    cat "$name.pem" intermediate.pem >"$name.chain.pem"
}

# The Exchange server of the seed: one certificate for its own names (SRV targets point here).
leaf exchange "DNS:mail.companya.e2e.test,DNS:autodiscover.companya.e2e.test"
# Company B's web site: a certificate for www only, served on the bare domain too.
leaf website-www "DNS:www.companyb.e2e.test"
# A web site whose certificate is right for the bare domain (answers 404 on the Autodiscover path).
leaf website-ok "DNS:website.e2e.test,DNS:www.website.e2e.test"
# Expired long ago / not valid before 2099 / expiring in 3 days.
leaf expired "DNS:autodiscover.expired.e2e.test" -startdate 20200101000000Z -enddate 20200201000000Z
leaf notyet "DNS:autodiscover.notyet.e2e.test" -startdate 20990101000000Z -enddate 20991231000000Z
leaf expiring "DNS:autodiscover.expiring.e2e.test" -days 3
# Two addresses of one name behind a load balancer: one current certificate, one expired.
leaf multi-good "DNS:autodiscover.multi.e2e.test"
leaf multi-expired "DNS:autodiscover.multi.e2e.test" -startdate 20200101000000Z -enddate 20200201000000Z
# The exporter's own web endpoint (--web.config.file TLS).
leaf exporter "DNS:localhost,IP:127.0.0.1"

# Microsoft 365 (simulated): one certificate for outlook.office365.com and *.outlook.com, like
# Microsoft's. It covers autodiscover.outlook.com and autodiscover-s.outlook.com, never a
# customer's autodiscover.<domain> that is a CNAME to autodiscover.outlook.com.
leaf microsoft365 "DNS:outlook.office365.com,DNS:*.office365.com,DNS:*.outlook.com"
# cloud: the web site on the bare domain has a certificate for www only (the seed's mistake).
leaf website-cloud "DNS:www.cloud.e2e.test"
# hybrid / hybrid302: the on-premises Exchange servers of two hybrid organisations.
leaf hybrid "DNS:mail.hybrid.e2e.test,DNS:autodiscover.hybrid.e2e.test"
leaf hybrid302 "DNS:mail.hybrid302.e2e.test,DNS:autodiscover.hybrid302.e2e.test"
# leafonly: the server sends only this leaf; its AIA caIssuers URL yields the intermediate.
LEAF_EXT=leaf_aia_ext leaf leafonly "DNS:autodiscover.leafonly.e2e.test"
# leafnoaia: the server sends only this leaf, and it has no AIA extension.
leaf leafnoaia "DNS:autodiscover.leafnoaia.e2e.test"
# bücher.e2e.test: the certificate names the A-label, as every certificate must.
leaf idn "DNS:autodiscover.xn--bcher-kva.e2e.test"

# selfsigned NAME "SAN": a self-signed leaf (no CA involved).
selfsigned() {
    local name=$1 san=$2
    local cn=${san%%,*}; cn=${cn#DNS:}
    newkey "$name"
    SAN=$san openssl req -config ca.cnf -x509 -new -key "$name.key" -subj "/CN=$cn" -days 365 \
        -extensions selfsigned_ext -out "$name.pem"
    cp "$name.pem" "$name.chain.pem"
}
selfsigned selfsigned "DNS:autodiscover.selfsigned.e2e.test"
# proxy: what a TLS-inspecting proxy presents for the host Microsoft 365 names (untrusted).
selfsigned proxy "DNS:mail.proxy.e2e.test"
