//! What the network layer observed, as plain data. The decision logic reads only these types,
//! so every verdict can be unit-tested from a table of facts.

use super::pox::PoxResponse;
use super::step::{StepId, StepStatus};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// The answer to one DNS question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DnsAnswer {
    /// Records of the asked type came back.
    Records {
        /// How many.
        count: usize,
    },
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no records of this type.
    NoData,
    /// The server answered SERVFAIL.
    ServFail,
    /// The server refused to answer.
    Refused,
    /// No answer in time.
    Timeout,
    /// No server could be reached at all.
    Unreachable {
        /// What failed.
        detail: String,
    },
    /// Anything else (malformed answer, other response code).
    Error {
        /// What failed.
        detail: String,
    },
}

impl DnsAnswer {
    /// The name has no records of this type, and the server said so.
    pub fn is_negative(&self) -> bool {
        matches!(self, Self::NxDomain | Self::NoData)
    }

    /// No DNS server answered at all: the resolver itself is not usable.
    pub fn is_transport_failure(&self) -> bool {
        matches!(self, Self::Timeout | Self::Unreachable { .. })
    }

    /// A short text for traces.
    pub fn describe(&self) -> String {
        match self {
            Self::Records { count } => format!("{count} record(s)"),
            Self::NxDomain => "NXDOMAIN (name does not exist)".into(),
            Self::NoData => "no records of this type (NODATA)".into(),
            Self::ServFail => "SERVFAIL (server failure)".into(),
            Self::Refused => "REFUSED".into(),
            Self::Timeout => "timeout".into(),
            Self::Unreachable { detail } => format!("no DNS server reachable ({detail})"),
            Self::Error { detail } => format!("error ({detail})"),
        }
    }
}

/// One hop of a CNAME chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnameHop {
    /// The alias.
    pub name: String,
    /// Where it points.
    pub target: String,
    /// Its TTL in seconds.
    pub ttl: u32,
}

/// The A and AAAA lookups of one host name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostLookup {
    /// The name asked for (the name certificates are checked against).
    pub host: String,
    /// CNAME hops from `host` to the name that holds the addresses.
    pub cname_chain: Vec<CnameHop>,
    /// Every address, A records first.
    pub addresses: Vec<IpAddr>,
    /// The A answer.
    pub a: DnsAnswer,
    /// The AAAA answer.
    pub aaaa: DnsAnswer,
    /// Time spent resolving.
    pub duration_seconds: f64,
}

impl HostLookup {
    /// The status of a step that could not go past DNS, if it could not.
    pub fn failure_status(&self) -> Option<StepStatus> {
        if !self.addresses.is_empty() {
            return None;
        }
        if self.a.is_negative() && self.aaaa.is_negative() {
            Some(StepStatus::DnsNoRecord)
        } else {
            Some(StepStatus::DnsError)
        }
    }
}

/// One record of `_autodiscover._tcp.D`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrvRecord {
    /// Target host, without the trailing dot (`.` for "no service").
    pub target: String,
    /// Port.
    pub port: u16,
    /// Priority (lower first).
    pub priority: u16,
    /// Weight (higher preferred among equal priorities).
    pub weight: u16,
}

/// The SRV lookup of a domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SrvLookup {
    /// `_autodiscover._tcp.D`.
    pub name: String,
    /// The DNS answer.
    pub answer: DnsAnswer,
    /// The records, in the order the server gave them.
    pub records: Vec<SrvRecord>,
    /// Time spent resolving.
    pub duration_seconds: f64,
}

/// How a TCP connection attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ConnectResult {
    /// Connected.
    Connected,
    /// Nothing listens there (RST).
    Refused,
    /// No answer in time.
    Timeout,
    /// Another socket error (unreachable network, ...).
    Failed {
        /// The error.
        detail: String,
    },
}

/// Whether the certificate's validity period covers the probe's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// notBefore <= now <= notAfter.
    Valid,
    /// now > notAfter.
    Expired,
    /// now < notBefore.
    NotYetValid,
}

/// The three independent judgements of a presented certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateVerdict {
    /// The leaf covers the host name the client asked for.
    pub name_matches: bool,
    /// The chain leads to a trusted root (judged at the leaf's mid-life, so expiry cannot hide it).
    pub trusted: bool,
    /// The validity period.
    pub validity: Validity,
    /// Why the chain is not trusted, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_error: Option<String>,
    /// Why the chain is out of its validity period when the leaf itself is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_error: Option<String>,
}

impl CertificateVerdict {
    /// All three checks pass: no security alert.
    pub fn is_valid(&self) -> bool {
        self.name_matches && self.trusted && self.validity == Validity::Valid
    }

    /// The step status this certificate causes, if it causes one. A wrong name is reported
    /// first: it stays wrong after a renewal, so it is the finding an admin must act on.
    pub fn problem(&self) -> Option<StepStatus> {
        if !self.name_matches {
            Some(StepStatus::CertNameMismatch)
        } else if !self.trusted {
            Some(StepStatus::CertUntrusted)
        } else if self.validity == Validity::Expired {
            Some(StepStatus::CertExpired)
        } else if self.validity == Validity::NotYetValid {
            Some(StepStatus::CertNotYetValid)
        } else {
            None
        }
    }
}

/// Facts of one certificate of the presented chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateFacts {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses of the subjectAltName extension.
    pub ip_addresses: Vec<String>,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the DER encoding, lower-case hex.
    pub fingerprint_sha256: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Days from the probe to notAfter (negative once expired).
    pub days_to_expiry: f64,
    /// Issuer equals subject.
    pub self_signed: bool,
}

/// How the TLS handshake went, with what the server presented even when it is invalid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// Handshake completed.
    pub established: bool,
    /// The handshake ran out of time.
    pub timed_out: bool,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Protocol version, e.g. `TLSv1_3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Cipher suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// The presented chain, leaf first (empty when none was presented).
    pub chain: Vec<CertificateFacts>,
    /// The judgement of the leaf, when a chain was presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<CertificateVerdict>,
    /// Time spent in the handshake.
    pub duration_seconds: f64,
}

impl TlsFacts {
    /// The leaf certificate, when one was presented.
    pub fn leaf(&self) -> Option<&CertificateFacts> {
        self.chain.first()
    }
}

/// What the body of a response was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyKind {
    /// No body.
    Empty,
    /// A well-formed Autodiscover response.
    Autodiscover {
        /// What it said.
        response: PoxResponse,
    },
    /// An HTML page.
    Html,
    /// Anything else (including XML that is not Autodiscover).
    Other {
        /// Why it is not Autodiscover.
        detail: String,
    },
    /// The body was larger than the cap; reading stopped there.
    TooLarge,
}

/// Why an HTTP exchange did not produce a response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HttpFailure {
    /// No response (or no complete body) in time.
    Timeout,
    /// The server broke the protocol or closed the connection.
    Protocol {
        /// The error.
        detail: String,
    },
}

/// One HTTP request and what came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpExchange {
    /// `POST` or `GET`.
    pub method: String,
    /// Status code, when a response head arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Location` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `WWW-Authenticate` headers.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub www_authenticate: Vec<String>,
    /// Exchange's fingerprint headers (`X-SOAP-Enabled`, `X-OAuth-Enabled`, ...) and `X-FEServer`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub exchange_headers: Vec<(String, String)>,
    /// `Server` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `Content-Type` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Bytes of body read (at most the cap).
    pub body_bytes: usize,
    /// What the body was.
    pub body: BodyKind,
    /// Set when no complete response arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<HttpFailure>,
    /// Time to the response head.
    pub time_to_first_byte_seconds: f64,
    /// Time to the end of the body.
    pub duration_seconds: f64,
}

impl HttpExchange {
    /// An exchange that produced no response.
    pub fn failed(method: &str, failure: HttpFailure) -> Self {
        Self {
            method: method.to_owned(),
            status: None,
            location: None,
            www_authenticate: Vec::new(),
            exchange_headers: Vec::new(),
            server: None,
            content_type: None,
            body_bytes: 0,
            body: BodyKind::Empty,
            failure: Some(failure),
            time_to_first_byte_seconds: 0.0,
            duration_seconds: 0.0,
        }
    }

    /// The authentication schemes offered by `WWW-Authenticate` (`Negotiate`, `NTLM`, ...).
    pub fn auth_schemes(&self) -> Vec<String> {
        let mut schemes = Vec::new();
        for header in &self.www_authenticate {
            for part in header.split(',') {
                let scheme = part.split_whitespace().next().unwrap_or("");
                // `realm="x"` continuation parts of a Basic challenge are not schemes.
                if !scheme.is_empty() && !scheme.contains('=') && !schemes.contains(&scheme.into())
                {
                    schemes.push(scheme.to_owned());
                }
            }
        }
        schemes
    }

    /// The response carries one of Exchange's own headers.
    pub fn looks_like_exchange(&self) -> bool {
        self.exchange_headers
            .iter()
            .any(|(name, _)| name.to_ascii_lowercase().ends_with("-enabled"))
    }
}

/// Everything that happened with one address of a host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddressAttempt {
    /// Address and port connected to.
    pub address: SocketAddr,
    /// TCP connect result.
    pub connect: ConnectResult,
    /// Time spent connecting.
    pub connect_seconds: f64,
    /// TLS facts (https only, when TCP connected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// The Autodiscover request (POST over https, GET on port 80).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpExchange>,
    /// The unauthenticated GET that reads Exchange's fingerprint headers (after a 401).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<HttpExchange>,
    /// The result for this address (see `classify`).
    pub status: StepStatus,
    /// Time spent on this address in all.
    pub duration_seconds: f64,
}

impl AddressAttempt {
    /// Both the POST and the fingerprint GET, for header checks.
    pub fn exchanges(&self) -> impl Iterator<Item = &HttpExchange> {
        self.http.iter().chain(self.fingerprint.iter())
    }
}

/// How a hop's URL came about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HopOrigin {
    /// The step's own URL.
    Start,
    /// An HTTP redirect (301/302/307/308) of the previous hop.
    HttpRedirect {
        /// The status code.
        status: u16,
    },
    /// A `redirectUrl` response of the previous hop.
    PoxRedirectUrl,
    /// An SRV record.
    SrvTarget {
        /// The record.
        record: SrvRecord,
    },
}

/// Where a hop sends the client next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HopNext {
    /// Follow to this URL (already validated).
    Url {
        /// The absolute URL.
        url: String,
        /// How the server said it.
        origin: HopOrigin,
    },
    /// Restart discovery for this address.
    Address {
        /// The new address.
        address: String,
    },
}

/// One URL tried within a step: its DNS lookup and every address of its host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// The URL.
    pub url: String,
    /// How this URL came about.
    pub origin: HopOrigin,
    /// The lookup of the URL's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<HostLookup>,
    /// Every address tried.
    pub addresses: Vec<AddressAttempt>,
    /// The hop's status across its addresses.
    pub status: StepStatus,
    /// Where the client goes next, when this hop redirects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<HopNext>,
    /// Why a redirect of this hop was refused, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_refused: Option<String>,
}

impl Hop {
    /// The host of the hop's URL, as asked for.
    pub fn host(&self) -> &str {
        super::redirect::host_of(&self.url).unwrap_or("")
    }
}

/// One step of one discovery: the URLs tried and where it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTrace {
    /// Which step.
    pub step: StepId,
    /// The step's first URL.
    pub url: String,
    /// Where the step ended.
    pub status: StepStatus,
    /// Time the step took.
    pub duration_seconds: f64,
    /// The SRV lookup (srv_record step only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srv: Option<SrvLookup>,
    /// The URLs tried, in order.
    pub hops: Vec<Hop>,
}

impl StepTrace {
    /// The hop the step ended on.
    pub fn final_hop(&self) -> Option<&Hop> {
        self.hops.last()
    }

    /// Every address tried by the step, with the hop it belongs to.
    pub fn addresses(&self) -> impl Iterator<Item = (&Hop, &AddressAttempt)> {
        self.hops
            .iter()
            .flat_map(|hop| hop.addresses.iter().map(move |a| (hop, a)))
    }
}
