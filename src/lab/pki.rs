//! A test certificate authority and the leaf certificates of the simulated world.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// A certificate with its key, ready for a TLS server.
pub struct ServerIdentity {
    /// Leaf first, then the issuing chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// What kind of leaf to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Valid from a year ago for `days` more days.
    ValidFor {
        /// Days until expiry.
        days: i64,
    },
    /// Expired `days_ago` days ago.
    Expired {
        /// Days since expiry.
        days_ago: i64,
    },
    /// Valid only from `days` days in the future.
    NotYetValid {
        /// Days until it becomes valid.
        days: i64,
    },
    /// Valid between these days, relative to now (negative: in the past).
    Window {
        /// Start.
        from_days: i64,
        /// End.
        to_days: i64,
    },
}

/// A test CA.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

/// The PKI could not issue a certificate.
#[derive(Debug, thiserror::Error)]
#[error("test PKI: {0}")]
pub struct PkiError(#[from] rcgen::Error);

impl TestCa {
    /// A new root CA named `name`.
    pub fn new(name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "autodiscover-exporter lab");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(3650);
        params.not_after = now + Duration::days(3650);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM (what a client adds to its trust store).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Issues a leaf for `names` (first name is also the subject CN).
    pub fn issue(&self, names: &[&str], validity: Validity) -> Result<ServerIdentity, PkiError> {
        let (params, key) = leaf_params(names, validity)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }

    /// Issues a leaf whose subject CN is `common_name` (any text, as a hostile CA may write it)
    /// and whose SAN lists `names`.
    pub fn issue_with_subject(
        &self,
        common_name: &str,
        names: &[&str],
        validity: Validity,
    ) -> Result<ServerIdentity, PkiError> {
        let (mut params, key) = leaf_params(names, validity)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }

    /// Issues a leaf served without any issuer (an incomplete chain), optionally with an
    /// Authority Information Access `caIssuers` URL naming where the issuer can be fetched.
    pub fn issue_leaf_only(
        &self,
        names: &[&str],
        ca_issuers: Option<&str>,
    ) -> Result<ServerIdentity, PkiError> {
        let (mut params, key) = leaf_params(names, Validity::ValidFor { days: 365 })?;
        if let Some(url) = ca_issuers {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    authority_info_access(url),
                ));
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }

    /// An intermediate CA issued by this one; its leaves are served with it (not the root).
    pub fn intermediate(&self, name: &str, validity: Validity) -> Result<Self, PkiError> {
        let (mut params, key) = leaf_params(&[], validity)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A self-signed leaf for `names`, as IIS and appliances ship by default.
    pub fn self_signed(names: &[&str]) -> Result<ServerIdentity, PkiError> {
        let (params, key) = leaf_params(names, Validity::ValidFor { days: 365 })?;
        let cert = params.self_signed(&key)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }
}

fn leaf_params(
    names: &[&str],
    validity: Validity,
) -> Result<(CertificateParams, KeyPair), PkiError> {
    let owned: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(owned)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.first().copied().unwrap_or("lab"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    let now = OffsetDateTime::now_utc();
    let (not_before, not_after) = match validity {
        Validity::ValidFor { days } => (now - Duration::days(365), now + Duration::days(days)),
        Validity::Expired { days_ago } => (
            now - Duration::days(days_ago + 365),
            now - Duration::days(days_ago),
        ),
        Validity::NotYetValid { days } => {
            (now + Duration::days(days), now + Duration::days(days + 365))
        }
        Validity::Window { from_days, to_days } => (
            now + Duration::days(from_days),
            now + Duration::days(to_days),
        ),
    };
    params.not_before = not_before;
    params.not_after = not_after;
    Ok((params, KeyPair::generate()?))
}

/// DER of an AuthorityInfoAccessSyntax with one caIssuers URI (short URLs only: every length
/// here fits one byte, which the lab's URLs do).
fn authority_info_access(url: &str) -> Vec<u8> {
    const CA_ISSUERS: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let url = &url.as_bytes()[..url.len().min(100)];
    let mut description = Vec::new();
    description.extend_from_slice(&CA_ISSUERS);
    description.push(0x86);
    description.push(url.len() as u8);
    description.extend_from_slice(url);
    let mut access = vec![0x30, description.len() as u8];
    access.extend_from_slice(&description);
    let mut syntax = vec![0x30, access.len() as u8];
    syntax.extend_from_slice(&access);
    syntax
}
