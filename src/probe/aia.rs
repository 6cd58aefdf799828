//! Windows-style chain completion (SPEC §3.2): when a server sends an incomplete chain, the
//! Windows chain engine fetches the missing issuer from the `caIssuers` URL of the certificate's
//! Authority Information Access extension. Outlook therefore shows no alert where Android, many
//! Linux clients and most libraries fail; the probe does what Windows does and says so.

use super::{Prober, StepContext};
use crate::model::facts::{CertificateSource, url_host};
use crate::net::certificate;
use crate::net::http::HttpConnection;
use crate::net::tls::{TlsOutcome, unix_now};
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Largest issuer certificate read.
const AIA_BODY_CAP: usize = 64 * 1024;
/// Most issuers fetched for one chain.
const MAX_FETCHES: usize = 3;
/// How long a fetched issuer is reused.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// How long a failed fetch is not retried.
const FAILURE_TTL: Duration = Duration::from_secs(300);
/// Most URLs remembered.
const MAX_ENTRIES: usize = 10_000;

/// A fetched issuer, or `None` after a failed fetch, and when.
type CachedIssuer = (Instant, Option<Arc<CertificateDer<'static>>>);

/// Issuer certificates by URL, shared by every probe.
#[derive(Default)]
pub(super) struct AiaCache {
    entries: Mutex<HashMap<String, CachedIssuer>>,
}

impl AiaCache {
    fn get(&self, url: &str) -> Option<Option<Arc<CertificateDer<'static>>>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, cert) = entries.get(url)?;
        let ttl = if cert.is_some() {
            CACHE_TTL
        } else {
            FAILURE_TTL
        };
        (at.elapsed() < ttl).then(|| cert.clone())
    }

    fn put(&self, url: &str, cert: Option<Arc<CertificateDer<'static>>>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(url.to_owned(), (Instant::now(), cert));
    }
}

impl Prober {
    /// Completes an untrusted chain from AIA URLs, as Windows does; when that makes it trusted,
    /// the outcome's chain and verdict are replaced and the verdict says how it was completed.
    pub(super) async fn complete_chain(
        &self,
        outcome: &mut TlsOutcome,
        host: &str,
        ctx: &StepContext,
    ) {
        let untrusted = outcome.facts.verdict.as_ref().is_some_and(|v| !v.trusted);
        if !untrusted || !outcome.facts.established() {
            return;
        }
        let mut chain = outcome.chain.clone();
        let mut facts = outcome.facts.chain.clone();
        for _ in 0..MAX_FETCHES {
            let Some(last) = facts.last() else { return };
            if last.self_signed {
                return;
            }
            let Some(url) = last
                .ca_issuers
                .iter()
                .find(|u| u.to_ascii_lowercase().starts_with("http://"))
                .cloned()
            else {
                return;
            };
            let Some(issuer) = self.fetch_issuer(&url, ctx).await else {
                return;
            };
            let mut issuer_facts = certificate::facts(&issuer, unix_now());
            if facts
                .iter()
                .any(|f| f.fingerprint_sha256 == issuer_facts.fingerprint_sha256)
            {
                return;
            }
            issuer_facts.source = CertificateSource::Aia { url };
            chain.push((*issuer).clone());
            facts.push(issuer_facts);
            if let Some(mut verdict) = self.tls.judge(&chain, &facts, host)
                && verdict.trusted
            {
                verdict.completed_by_aia = true;
                outcome.chain = chain;
                outcome.facts.chain = facts;
                outcome.facts.verdict = Some(verdict);
                return;
            }
        }
    }

    /// Fetches one issuer certificate over plain http (never through TLS: an AIA fetch must not
    /// depend on another certificate), DER or PEM, size-capped, within the phase budget.
    async fn fetch_issuer(
        &self,
        url: &str,
        ctx: &StepContext,
    ) -> Option<Arc<CertificateDer<'static>>> {
        if let Some(cached) = self.aia.get(url) {
            return cached;
        }
        let fetched = self.download(url, ctx).await.map(Arc::new);
        self.aia.put(url, fetched.clone());
        fetched
    }

    async fn download(&self, url: &str, ctx: &StepContext) -> Option<CertificateDer<'static>> {
        let parsed = url::Url::parse(url).ok()?;
        if parsed.scheme() != "http" || !parsed.username().is_empty() {
            return None;
        }
        let host = url_host(url)?.into_owned();
        let port = parsed.port_or_known_default()?;
        if ctx.phase().is_zero() {
            return None;
        }
        let ips = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self.dns.lookup_host(&host, ctx.phase()).await.addresses,
        };
        // The URL comes from a certificate: the same addresses are off limits as for any host.
        let allowed = ips
            .into_iter()
            .filter(|ip| self.policy.refusal(*ip).is_none());
        for ip in allowed.take(4) {
            if ctx.phase().is_zero() {
                return None;
            }
            let address = SocketAddr::new(ip, port);
            let _slot = self.connection_slot(ctx).await.ok()?;
            let connected =
                tokio::time::timeout(ctx.phase(), self.connector.connect(address)).await;
            let Ok(Ok(tcp)) = connected else { continue };
            let mut connection = HttpConnection::open(tcp, ctx.phase()).await.ok()?;
            let host_header = if port == 80 {
                host.clone()
            } else {
                format!("{host}:{port}")
            };
            let path = match parsed.query() {
                Some(query) => format!("{}?{query}", parsed.path()),
                None => parsed.path().to_owned(),
            };
            let (exchange, body) = connection
                .get_bytes(&host_header, &path, ctx.phase(), AIA_BODY_CAP)
                .await;
            if exchange.status != Some(200) || body.len() > AIA_BODY_CAP {
                return None;
            }
            return parse_certificate(&body);
        }
        None
    }
}

/// A certificate as AIA URLs serve it: DER (`application/pkix-cert`) or PEM.
fn parse_certificate(body: &[u8]) -> Option<CertificateDer<'static>> {
    if body.first() == Some(&0x30) {
        return Some(CertificateDer::from(body.to_vec()));
    }
    CertificateDer::from_pem_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_and_pem_bodies_are_read_and_junk_is_not() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        assert_eq!(
            parse_certificate(&der).map(|c| c.to_vec()),
            Some(der.clone())
        );
        let pem = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            parse_certificate(pem.as_bytes()).map(|c| c.to_vec()),
            Some(der)
        );
        assert!(parse_certificate(b"<html>not found</html>").is_none());
        assert!(parse_certificate(b"").is_none());
    }
}
