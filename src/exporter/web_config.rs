//! `--web.config.file`: the Prometheus exporter-toolkit web configuration (TLS, client
//! certificates, basic auth with bcrypt hashes, extra response headers).

use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_rustls::TlsAcceptor;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A loaded web configuration.
pub struct WebConfig {
    /// TLS for every connection, when configured.
    pub tls: Option<TlsAcceptor>,
    users: BTreeMap<String, String>,
    /// Extra headers on every response.
    pub headers: Vec<(String, String)>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// Loads and checks the file (certificates, keys and hashes included).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!("{}:{}:", l.line(), l.column()))
                    .unwrap_or_default();
                format!("{}:{at} {}", path.display(), e.without_snippet())
            })?
        };
        for (user, hash) in &raw.basic_auth_users {
            if !hash.starts_with("$2") {
                return Err(format!(
                    "{}: basic_auth_users.{user} is not a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':')",
                    path.display()
                ));
            }
        }
        let tls = raw
            .tls_server_config
            .map(|t| tls_acceptor(&t))
            .transpose()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            tls,
            users: raw.basic_auth_users,
            headers: raw
                .http_server_config
                .map(|h| h.headers.into_iter().collect())
                .unwrap_or_default(),
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether requests need credentials.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks an `Authorization` header value. Successful checks are remembered (as a hash of
    /// user and password) because bcrypt is deliberately slow.
    pub fn authorize(&self, header: Option<&str>) -> bool {
        if !self.requires_auth() {
            return true;
        }
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let Some(hash) = self.users.get(&user) else {
            // Spend the same effort as for a known user so timing does not reveal user names.
            let _ = bcrypt::verify(&password, decoy_hash());
            return false;
        };
        let key: [u8; 32] = Sha256::digest(format!("{user}\0{password}\0{hash}").as_bytes()).into();
        if self.verified.lock().is_ok_and(|cache| cache.contains(&key)) {
            return true;
        }
        let ok = bcrypt::verify(&password, hash).unwrap_or(false);
        if ok && let Ok(mut cache) = self.verified.lock() {
            if cache.len() > 1024 {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }
}

fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| bcrypt::hash("decoy", 10).unwrap_or_default())
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .trim()
        .strip_prefix("Basic ")
        .or_else(|| header.trim().strip_prefix("basic "))?;
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn tls_acceptor(raw: &RawTls) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&raw.cert_file)
        .map_err(|e| {
            format!(
                "tls_server_config.cert_file {}: {e}",
                raw.cert_file.display()
            )
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "tls_server_config.cert_file {}: {e}",
                raw.cert_file.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "tls_server_config.cert_file {} holds no certificate",
            raw.cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&raw.key_file)
        .map_err(|e| format!("tls_server_config.key_file {}: {e}", raw.key_file.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match raw.min_version.as_deref() {
        None | Some("TLS12") => rustls::DEFAULT_VERSIONS,
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(other) => {
            return Err(format!(
                "tls_server_config.min_version {other:?}: use TLS12 or TLS13"
            ));
        }
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let auth = raw.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca = raw.client_ca_file.as_ref().ok_or_else(|| {
                format!("tls_server_config.client_auth_type {auth} needs client_ca_file")
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("client_ca_file: {e}"))?
            {
                roots
                    .add(cert.map_err(|e| format!("client_ca_file: {e}"))?)
                    .map_err(|e| format!("client_ca_file: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type {other:?} is not supported (NoClientCert, \
                 VerifyClientCertIfGiven, RequireAndVerifyClientCert)"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_server_config: certificate and key do not match: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6c2VjcmV0"),
            Some(("alice".into(), "secret".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!!"), None);
    }
}
