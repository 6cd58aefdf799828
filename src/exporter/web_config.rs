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
use tokio::sync::Semaphore;
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

/// Password checks (bcrypt) running at once at most; past that, requests are answered 429 at
/// once. bcrypt is slow on purpose, so an unbounded number of checks is a way to burn CPU.
pub const MAX_PASSWORD_CHECKS: usize = 2;
/// Highest bcrypt cost accepted: every cost step doubles the time of a check (cost 16 takes
/// seconds), and each request with new credentials pays it.
const MAX_BCRYPT_COST: u32 = 16;

/// A loaded web configuration.
pub struct WebConfig {
    /// TLS for every connection, when configured.
    pub tls: Option<TlsAcceptor>,
    users: BTreeMap<String, String>,
    /// Extra headers on every response.
    pub headers: Vec<(String, String)>,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// Checked for unknown users, so they cost what a known one costs (same bcrypt cost).
    decoy: String,
    checks: Arc<Semaphore>,
}

/// The answer to a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// No credentials needed, or good ones.
    Allowed,
    /// Missing or wrong credentials.
    Denied,
    /// Every password check slot is taken: try again.
    Busy,
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
        let mut cost = 0;
        for (user, hash) in &raw.basic_auth_users {
            cost = cost.max(
                bcrypt_cost(hash)
                    .map_err(|e| format!("{}: basic_auth_users.{user}: {e}", path.display()))?,
            );
        }
        let decoy = if raw.basic_auth_users.is_empty() {
            String::new()
        } else {
            bcrypt::hash("decoy password", cost)
                .map_err(|e| format!("{}: cannot make a decoy hash: {e}", path.display()))?
        };
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
            decoy,
            checks: Arc::new(Semaphore::new(MAX_PASSWORD_CHECKS)),
        })
    }

    /// Checks a request's `Authorization` header: at once when no credentials are needed or
    /// they were checked before, otherwise with bcrypt off the runtime's worker threads, in one
    /// of [`MAX_PASSWORD_CHECKS`] slots (none free: [`Authorization::Busy`]).
    pub async fn check(self: &Arc<Self>, header: Option<&str>) -> Authorization {
        if !self.requires_auth() {
            return Authorization::Allowed;
        }
        let Some((user, password)) = header.and_then(parse_basic) else {
            return Authorization::Denied;
        };
        if self.is_remembered(&user, &password) {
            return Authorization::Allowed;
        }
        let Ok(slot) = self.checks.clone().try_acquire_owned() else {
            return Authorization::Busy;
        };
        let web = self.clone();
        let allowed = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            web.verify(&user, &password)
        })
        .await
        .unwrap_or(false);
        if allowed {
            Authorization::Allowed
        } else {
            Authorization::Denied
        }
    }

    /// Whether requests need credentials.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks an `Authorization` header value, blocking (bcrypt). Successful checks are
    /// remembered (as a hash of user, password and bcrypt hash) because bcrypt is slow.
    pub fn authorize(&self, header: Option<&str>) -> bool {
        if !self.requires_auth() {
            return true;
        }
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        self.is_remembered(&user, &password) || self.verify(&user, &password)
    }

    fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
        Sha256::digest(format!("{user}\0{password}\0{hash}").as_bytes()).into()
    }

    fn is_remembered(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key = Self::cache_key(user, password, hash);
        self.verified.lock().is_ok_and(|cache| cache.contains(&key))
    }

    /// One bcrypt check: the user's hash, or the decoy for an unknown user (same cost, so the
    /// answer takes as long and does not tell which user names exist).
    fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            let _ = bcrypt::verify(password, &self.decoy);
            return false;
        };
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok && let Ok(mut cache) = self.verified.lock() {
            if cache.len() > 1024 {
                cache.clear();
            }
            cache.insert(Self::cache_key(user, password, hash));
        }
        ok
    }
}

/// The cost of a well-formed bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, a cost of 4 to
/// 16, 22 characters of salt and 31 of hash in bcrypt's base64 alphabet).
fn bcrypt_cost(hash: &str) -> Result<u32, String> {
    const HINT: &str = "make one with: htpasswd -nBC 10 \"\" | tr -d ':'";
    if !hash.starts_with("$2") {
        return Err(format!("not a bcrypt hash ({HINT})"));
    }
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e| format!("malformed bcrypt hash: {e} ({HINT})"))?;
    let encoded = hash.rsplit('$').next().unwrap_or_default();
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if encoded.len() != 53 || !encoded.chars().all(alphabet) {
        return Err(format!(
            "malformed bcrypt hash: salt and hash must be 53 characters of [./A-Za-z0-9] ({HINT})"
        ));
    }
    let cost = parts.get_cost();
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is outside 4..={MAX_BCRYPT_COST} (every step doubles the time of \
             each check; 10 to 12 is usual)"
        ));
    }
    Ok(cost)
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
    fn bcrypt_hashes_are_checked_at_load() {
        let good = bcrypt::hash("x", 4).unwrap();
        assert_eq!(bcrypt_cost(&good), Ok(4));
        let cost_12 = good.replacen("$04$", "$12$", 1);
        assert_eq!(bcrypt_cost(&cost_12), Ok(12));
        for bad in [
            "plaintext",
            "$2y$10$short",
            "$2y$xx$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza",
            "$2q$10$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza",
            "$2y$10$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz!",
            "$2y$10$",
            "$2",
        ] {
            assert!(bcrypt_cost(bad).is_err(), "{bad}");
        }
        assert!(
            bcrypt_cost(&good.replacen("$04$", "$31$", 1))
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            bcrypt_cost(&good.replacen("$04$", "$03$", 1))
                .unwrap_err()
                .contains("outside")
        );
    }

    fn load_users(users: &str) -> Result<WebConfig, String> {
        let path = std::env::temp_dir().join(format!(
            "autodiscover-web-config-{}-{}.yml",
            std::process::id(),
            Sha256::digest(users.as_bytes())[0]
        ));
        std::fs::write(&path, format!("basic_auth_users:\n{users}")).unwrap();
        let loaded = WebConfig::load(&path);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn unknown_users_cost_what_known_ones_cost() {
        let hash = bcrypt::hash("secret", 5).unwrap();
        let web = load_users(&format!("  alice: \"{hash}\"\n")).unwrap();
        assert_eq!(bcrypt_cost(&web.decoy), Ok(5));
        assert!(web.authorize(Some("Basic YWxpY2U6c2VjcmV0"))); // alice:secret
        assert!(web.is_remembered("alice", "secret"));
        assert!(!web.authorize(Some("Basic Ym9iOnNlY3JldA=="))); // bob:secret
        assert!(!web.authorize(None));
    }

    #[test]
    fn a_malformed_hash_is_an_error_at_start() {
        let error = load_users("  alice: \"$2y$10$not-a-real-hash\"\n").unwrap_err();
        assert!(error.contains("basic_auth_users.alice"), "{error}");
        assert!(error.contains("malformed bcrypt hash"), "{error}");
    }

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
