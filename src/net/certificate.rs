//! Certificate facts (x509-parser) and the three independent judgements: name, trust, time.

use crate::model::facts::{CertificateFacts, CertificateSource, CertificateVerdict, Validity};
use rustls::RootCertStore;
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::time::Duration;
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Reads the facts of one DER certificate. Unparseable input still gets its fingerprint.
pub fn facts(der: &[u8], now_unix: i64) -> CertificateFacts {
    let fingerprint_sha256 = hex(&Sha256::digest(der));
    let cert = match X509Certificate::from_der(der) {
        Ok((_, cert)) => cert,
        Err(error) => return unparseable(fingerprint_sha256, error.to_string()),
    };
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push(dns.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => ip_addresses.push(ip_text(bytes)),
                _ => {}
            }
        }
    }
    let ca_issuers = ca_issuer_urls(&cert);
    let subject = cert.subject().to_string();
    let issuer = cert.issuer().to_string();
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    CertificateFacts {
        self_signed: subject == issuer,
        subject,
        issuer,
        dns_names,
        ip_addresses,
        serial: hex(cert.raw_serial()),
        fingerprint_sha256,
        not_before,
        not_after,
        days_to_expiry: days_to(not_after, now_unix),
        ca_issuers,
        source: CertificateSource::Presented,
        parse_error: None,
    }
}

/// Remembers [`facts`] per certificate: thousands of domains present the same few certificates,
/// and parsing one (names, extensions, fingerprint) costs more than looking it up. Only the days
/// to expiry depend on the time; they are computed anew for every lookup.
#[derive(Debug, Default)]
pub struct FactsMemo {
    known: std::sync::Mutex<std::collections::HashMap<Vec<u8>, CertificateFacts>>,
}

/// Most certificates remembered; past that the memo starts over.
const FACTS_MEMO_CAPACITY: usize = 4096;

impl FactsMemo {
    /// The facts of `der` now, remembered or read now.
    pub fn facts(&self, der: &[u8], now_unix: i64) -> CertificateFacts {
        let known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(der)
            .cloned();
        if let Some(mut facts) = known {
            if facts.parse_error.is_none() {
                facts.days_to_expiry = days_to(facts.not_after, now_unix);
            }
            return facts;
        }
        let facts = facts(der, now_unix);
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= FACTS_MEMO_CAPACITY {
            known.clear();
        }
        known.insert(der.to_vec(), facts.clone());
        facts
    }
}

fn days_to(not_after: i64, now_unix: i64) -> f64 {
    round2(not_after.saturating_sub(now_unix) as f64 / SECONDS_PER_DAY)
}

/// Facts of bytes that are not a certificate x509-parser can read: only the fingerprint is
/// known, and the reason is kept so renderers can say why no dates are shown.
fn unparseable(fingerprint_sha256: String, reason: String) -> CertificateFacts {
    CertificateFacts {
        subject: "(unparseable certificate)".into(),
        issuer: String::new(),
        dns_names: vec![],
        ip_addresses: vec![],
        serial: String::new(),
        fingerprint_sha256,
        not_before: 0,
        not_after: 0,
        days_to_expiry: 0.0,
        self_signed: false,
        ca_issuers: vec![],
        source: CertificateSource::Presented,
        parse_error: Some(reason),
    }
}

/// Most AIA URLs kept per certificate.
const MAX_CA_ISSUERS: usize = 4;

/// The `caIssuers` URLs of the Authority Information Access extension.
fn ca_issuer_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for extension in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = extension.parsed_extension() {
            for description in &aia.accessdescs {
                if description.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS
                    && let GeneralName::URI(uri) = &description.access_location
                    && urls.len() < MAX_CA_ISSUERS
                    && uri.len() <= 2048
                {
                    urls.push((*uri).to_owned());
                }
            }
        }
    }
    urls
}

/// Judges a presented chain for `host`: does the leaf cover the name, does the chain lead to a
/// trusted root, is it within its validity period. Each check runs on its own, so one failure
/// never hides another.
pub fn judge(
    chain: &[CertificateDer<'static>],
    chain_facts: &[CertificateFacts],
    host: &str,
    roots: &RootCertStore,
    provider: &CryptoProvider,
    now_unix: i64,
) -> Option<CertificateVerdict> {
    judge_with(chain, chain_facts, host, now_unix, |chain, facts| {
        chain_trust(chain, facts, roots, provider, now_unix)
    })
}

/// [`judge`] with the chain's trust from `trust` (which may remember it).
pub fn judge_with(
    chain: &[CertificateDer<'static>],
    chain_facts: &[CertificateFacts],
    host: &str,
    now_unix: i64,
    trust: impl FnOnce(&[CertificateDer<'static>], &[CertificateFacts]) -> ChainTrust,
) -> Option<CertificateVerdict> {
    let leaf_der = chain.first()?;
    let leaf = chain_facts.first()?;
    let parsed = ParsedCertificate::try_from(leaf_der).ok();
    let name_matches = match (&parsed, ServerName::try_from(host)) {
        (Some(cert), Ok(name)) => verify_server_name(cert, &name).is_ok(),
        _ => false,
    };
    let ChainTrust { at_now, trust } = trust(chain, chain_facts);
    let leaf_validity = if leaf.parse_error.is_some() {
        // x509-parser could not read the dates (they are 0 in the facts, which would read as
        // "expired in 1970"); webpki's verification at `now` still judges them when it can
        // parse the certificate.
        match &at_now {
            Err(error) => time_error(error).unwrap_or(Validity::Valid),
            Ok(()) => Validity::Valid,
        }
    } else if now_unix < leaf.not_before {
        Validity::NotYetValid
    } else if now_unix > leaf.not_after {
        Validity::Expired
    } else {
        Validity::Valid
    };
    // A current leaf can still fail today because an issuing certificate expired (or is not
    // valid yet): clients reject that chain just the same.
    let (validity, validity_error) = match (&leaf_validity, &at_now, &trust) {
        (Validity::Valid, Err(error), Ok(())) => match time_error(error) {
            Some(chain_validity) => (
                chain_validity,
                Some(format!(
                    "an issuing certificate is outside its validity period ({error})"
                )),
            ),
            None => (Validity::Valid, None),
        },
        _ => (leaf_validity, None),
    };
    Some(CertificateVerdict {
        name_matches,
        trusted: trust.is_ok(),
        validity,
        trust_error: trust.err(),
        validity_error,
        completed_by_aia: false,
    })
}

/// Whether a chain leads to a trusted root: verified now, and judged apart from time.
#[derive(Clone, Debug)]
pub struct ChainTrust {
    /// The verification now.
    pub at_now: Result<(), rustls::Error>,
    /// Trusted, or why not, regardless of dates.
    pub trust: Result<(), String>,
}

/// Verifies `chain` (leaf first) against `roots`. Trust is judged apart from time: the chain
/// counts as trusted when it verifies at some moment of the leaf's life (now, mid-life, just
/// inside either end), so an expired or future certificate still tells whether it chains to a
/// trusted root.
pub fn chain_trust(
    chain: &[CertificateDer<'static>],
    chain_facts: &[CertificateFacts],
    roots: &RootCertStore,
    provider: &CryptoProvider,
    now_unix: i64,
) -> ChainTrust {
    let parsed = chain
        .first()
        .and_then(|der| ParsedCertificate::try_from(der).ok());
    let Some(leaf) = chain_facts.first() else {
        return ChainTrust {
            at_now: Err(rustls::Error::General("no certificate".into())),
            trust: Err("no certificate".into()),
        };
    };
    let verify_at = |unix: i64| match &parsed {
        Some(cert) => verify_server_cert_signed_by_trust_anchor(
            cert,
            roots,
            &chain[1..],
            UnixTime::since_unix_epoch(Duration::from_secs(unix.max(0) as u64)),
            provider.signature_verification_algorithms.all,
        ),
        None => Err(rustls::Error::General(
            "the certificate cannot be parsed".into(),
        )),
    };
    let at_now = verify_at(now_unix);
    let trust = match &at_now {
        Ok(()) => Ok(()),
        Err(error) => {
            let mut moments = vec![
                leaf.not_before / 2 + leaf.not_after / 2,
                leaf.not_before + 1,
                leaf.not_after - 1,
            ];
            // The moment when every presented certificate is valid, if there is one.
            let start = chain_facts
                .iter()
                .map(|c| c.not_before)
                .max()
                .unwrap_or(leaf.not_before);
            let end = chain_facts
                .iter()
                .map(|c| c.not_after)
                .min()
                .unwrap_or(leaf.not_after);
            if start <= end {
                moments.insert(0, start / 2 + end / 2);
            }
            let errors: Vec<rustls::Error> =
                moments.iter().filter_map(|m| verify_at(*m).err()).collect();
            if errors.len() < moments.len() {
                Ok(())
            } else if errors
                .iter()
                .chain([error])
                .all(|e| time_error(e).is_some())
            {
                // No single moment suits every certificate (an old leaf under a re-issued
                // intermediate), yet nothing but dates failed: the chain leads to a trusted
                // root, and the dates are the problem.
                Ok(())
            } else {
                let cause = errors
                    .iter()
                    .chain([error])
                    .find(|e| time_error(e).is_none());
                Err(cause.unwrap_or(error).to_string())
            }
        }
    };
    ChainTrust { at_now, trust }
}

/// Remembers [`chain_trust`] per presented chain, for one set of roots. Verifying a chain costs
/// a signature check per certificate, and thousands of domains present the same few chains
/// (one hosting provider, Microsoft's). The answer depends on the chain's bytes, the roots and
/// which of the chain's certificates are within their validity period now, so that is the key:
/// a remembered answer is exactly the one a fresh verification would give.
#[derive(Debug, Default)]
pub struct TrustMemo {
    known: std::sync::Mutex<std::collections::HashMap<(Vec<u8>, u64), ChainTrust>>,
}

/// Most chains remembered; past that the memo starts over.
const TRUST_MEMO_CAPACITY: usize = 1024;

impl TrustMemo {
    /// The trust of `chain`, remembered or verified now.
    pub fn trust(
        &self,
        chain: &[CertificateDer<'static>],
        chain_facts: &[CertificateFacts],
        roots: &RootCertStore,
        provider: &CryptoProvider,
        now_unix: i64,
    ) -> ChainTrust {
        let mut digest = Sha256::new();
        for der in chain {
            digest.update((der.len() as u64).to_be_bytes());
            digest.update(der.as_ref());
        }
        // Bit i: certificate i of the chain is within its validity period now (chains longer
        // than 63 certificates are not remembered).
        let valid_now = chain_facts
            .iter()
            .enumerate()
            .take(63)
            .filter(|(_, c)| c.not_before <= now_unix && now_unix <= c.not_after)
            .fold(0u64, |mask, (i, _)| mask | (1 << i));
        let key = (digest.finalize().to_vec(), valid_now);
        // The dates of a certificate x509-parser cannot read are unknown here, so which
        // certificates are valid now is unknown too: such chains are verified every time.
        let cacheable = chain.len() <= 63
            && chain.len() == chain_facts.len()
            && chain_facts.iter().all(|c| c.parse_error.is_none());
        if cacheable
            && let Some(known) = self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
        {
            return known.clone();
        }
        let trust = chain_trust(chain, chain_facts, roots, provider, now_unix);
        if cacheable {
            let mut known = self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if known.len() >= TRUST_MEMO_CAPACITY {
                known.clear();
            }
            known.insert(key, trust.clone());
        }
        trust
    }
}

/// The validity a time error stands for, if `error` is one.
fn time_error(error: &rustls::Error) -> Option<Validity> {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(E::Expired | E::ExpiredContext { .. }) => {
            Some(Validity::Expired)
        }
        rustls::Error::InvalidCertificate(E::NotValidYet | E::NotValidYetContext { .. }) => {
            Some(Validity::NotYetValid)
        }
        _ => None,
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => hex(bytes),
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_panic() {
        let facts = facts(b"not a certificate", 0);
        assert_eq!(facts.subject, "(unparseable certificate)");
        assert_eq!(facts.fingerprint_sha256.len(), 64);
    }
}
