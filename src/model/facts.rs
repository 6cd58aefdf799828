//! What the network layer observed, as plain data. The decision logic reads only these types,
//! so every verdict can be unit-tested from a table of facts.

use super::address::is_internal_name;
use super::pox::PoxResponse;
use super::step::{StepId, StepStatus};
pub use super::url_parts::url_host;
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
    /// The query could not be sent for a local reason (no file descriptor, no buffer space):
    /// the exporter's problem, not the domain's.
    LocalError {
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

    /// The query failed on this machine (see [`DnsAnswer::LocalError`]).
    pub fn is_local_failure(&self) -> bool {
        matches!(self, Self::LocalError { .. })
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
            Self::LocalError { detail } => format!("not sent: local failure ({detail})"),
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
    /// The distinct addresses tried, A records first; at most [`MAX_ADDRESSES_PER_HOST`].
    pub addresses: Vec<IpAddr>,
    /// How many distinct addresses the answers held (more than `addresses` when capped).
    #[serde(default)]
    pub addresses_published: usize,
    /// The A answer.
    pub a: DnsAnswer,
    /// The AAAA answer.
    pub aaaa: DnsAnswer,
    /// Time spent resolving.
    pub duration_seconds: f64,
    /// These answers were received seconds earlier for another domain's probe asking the same
    /// name (a host outside that domain: Microsoft's, an SRV or redirect target), and are
    /// reused, as a client's DNS cache would (see `probe::shared`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
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

/// Most addresses of one host a step tries: a hostile zone can publish thousands, and each is a
/// connection (a file descriptor) of the exporter.
pub const MAX_ADDRESSES_PER_HOST: usize = 16;

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
    /// The records in the order clients try them (RFC 2782), at most the first
    /// `protocol::srv::MAX_SRV_RECORDS` of them.
    pub records: Vec<SrvRecord>,
    /// How many records the answer held (more than `records` when capped).
    #[serde(default)]
    pub records_published: usize,
    /// Time spent resolving.
    pub duration_seconds: f64,
}

/// At most this many NS names are kept from one answer (a delegation has 2 to 13).
pub const MAX_NAMESERVERS: usize = 32;

/// The SOA record of a zone, as far as a monitor cares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Soa {
    /// The primary name server (MNAME), without the trailing dot.
    pub primary: String,
    /// The zone's serial number.
    pub serial: u32,
}

/// The domain's delegation as the configured resolver answers it: its NS set and SOA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delegation {
    /// The NS answer.
    pub ns_answer: DnsAnswer,
    /// The NS names, lower case without the trailing dot, sorted, at most [`MAX_NAMESERVERS`].
    pub nameservers: Vec<String>,
    /// The SOA answer.
    pub soa_answer: DnsAnswer,
    /// The SOA record, when the domain is a zone apex and the server gave it.
    pub soa: Option<Soa>,
    /// Time spent on both lookups (they run concurrently).
    pub duration_seconds: f64,
}

impl Delegation {
    /// The NS set as one label value: sorted names joined by commas.
    pub fn nameservers_joined(&self) -> String {
        self.nameservers.join(",")
    }

    /// The NS set is known: the server answered with records, or said there are none.
    pub fn nameservers_known(&self) -> bool {
        matches!(self.ns_answer, DnsAnswer::Records { .. }) && !self.nameservers.is_empty()
    }
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
    /// Not tried for a local reason: no file descriptor or buffer space, or no free connection
    /// slot of the exporter in time. The exporter's problem, never the domain's.
    LocalError {
        /// What failed.
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
    /// The server sent an incomplete chain that is trusted only after fetching the missing
    /// issuer from its AIA URL (Windows does; many other clients do not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub completed_by_aia: bool,
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
    /// The Authority Information Access `caIssuers` URLs (where Windows fetches a missing issuer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_issuers: Vec<String>,
    /// Where the probe got this certificate from.
    #[serde(default)]
    pub source: CertificateSource,
    /// Why the certificate could not be parsed, when it could not (its dates are then unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

/// Where a certificate of a chain came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CertificateSource {
    /// The server sent it in the handshake.
    #[default]
    Presented,
    /// Fetched from the `caIssuers` URL of the certificate below it, as Windows does.
    Aia {
        /// The URL.
        url: String,
    },
}

/// How the TLS handshake went, with what the server presented even when it is invalid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// How the handshake ended.
    pub handshake: TlsHandshake,
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

/// How a TLS handshake ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TlsHandshake {
    /// Completed.
    Established,
    /// Ran out of time.
    TimedOut,
    /// Failed.
    Failed {
        /// Why.
        error: String,
    },
}

impl CertificateFacts {
    /// Names on the certificate that only exist inside a company network.
    pub fn internal_names(&self) -> Vec<String> {
        self.dns_names
            .iter()
            .filter(|name| is_internal_name(name))
            .cloned()
            .collect()
    }
}

impl TlsFacts {
    /// The handshake completed.
    pub fn established(&self) -> bool {
        self.handshake == TlsHandshake::Established
    }

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
    /// A JSON answer of Microsoft 365's Autodiscover (`autodiscover.json`).
    Microsoft365 {
        /// What it said.
        answer: Microsoft365Json,
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

/// A JSON body of Microsoft 365's Autodiscover service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Microsoft365Json {
    /// `{"Protocol": "AutodiscoverV1", "Url": "..."}`: the service knows the mailbox.
    Endpoint {
        /// The POX Autodiscover URL Outlook POSTs to next.
        url: String,
    },
    /// `{"ErrorCode": "...", "ErrorMessage": "..."}`.
    Error {
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// JSON of another shape.
    Other {
        /// What was wrong with it.
        detail: String,
    },
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

/// The HTTP method of a probe request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// The unauthenticated GET (port-80 redirect step, fingerprint, Microsoft 365 query, AIA).
    Get,
    /// The Autodiscover POST.
    Post,
}

impl HttpMethod {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// Exchange's fingerprint headers (`X-SOAP-Enabled`, `X-OAuth-Enabled`, ...): an Autodiscover
/// service that sends them is an Exchange server, not a web server asking for a password.
pub fn is_exchange_fingerprint(header: &str) -> bool {
    const PREFIX: &str = "x-";
    const SUFFIX: &str = "-enabled";
    let bytes = header.as_bytes();
    bytes.len() >= PREFIX.len() + SUFFIX.len() - 1
        && bytes[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
        && bytes[bytes.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX.as_bytes())
}

/// Headers the probe keeps for the trace: the fingerprint headers and the front-end names.
pub fn is_exchange_header(header: &str) -> bool {
    is_exchange_fingerprint(header)
        || header.eq_ignore_ascii_case("x-feserver")
        || header.eq_ignore_ascii_case("x-owa-version")
}

/// One HTTP request and what came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpExchange {
    /// The method.
    pub method: HttpMethod,
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
    /// `Retry-After` header (throttling), in seconds when it is a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
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
    pub fn failed(method: HttpMethod, failure: HttpFailure) -> Self {
        Self {
            method,
            status: None,
            location: None,
            www_authenticate: Vec::new(),
            exchange_headers: Vec::new(),
            server: None,
            content_type: None,
            retry_after_seconds: None,
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
                if !scheme.is_empty()
                    && !scheme.contains('=')
                    && !schemes.iter().any(|known| known == scheme)
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
            .any(|(name, _)| is_exchange_fingerprint(name))
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
    /// These facts were observed seconds earlier for another probe that asked the same host at
    /// the same address the same request, and are reused (see `probe::shared`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// The request went over a connection kept open after another domain's request to the same
    /// host at the same address seconds earlier: the TLS facts are that handshake's, the HTTP
    /// exchange is this attempt's own (see `probe::kept`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connection_reused: bool,
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
    /// The `Url` of Microsoft 365's JSON answer.
    Microsoft365,
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
    pub redirect_refused: Option<RedirectRefusal>,
    /// Addresses of the host the probe does not connect to, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_addresses: Vec<RefusedAddress>,
}

/// An address the probe refuses to connect to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedAddress {
    /// The address.
    pub address: IpAddr,
    /// Why.
    pub reason: AddressRefusal,
}

/// Why the probe does not connect to an address a name resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressRefusal {
    /// 169.254/16, fe80::/10: the exporter's own link (cloud metadata services live there).
    LinkLocal,
    /// 0.0.0.0, :: (the exporter's own host).
    Unspecified,
    /// Multicast or broadcast: not a server.
    Multicast,
    /// Loopback, refused by `refuse_private_addresses`.
    Loopback,
    /// RFC 1918, shared or unique-local, refused by `refuse_private_addresses`.
    Private,
}

impl AddressRefusal {
    /// What the address is, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::LinkLocal => "a link-local address",
            Self::Unspecified => "an unspecified (this-host) address",
            Self::Multicast => "a multicast or broadcast address",
            Self::Loopback => "a loopback address (refuse_private_addresses)",
            Self::Private => "a private address (refuse_private_addresses)",
        }
    }
}

impl Hop {
    /// The host of the hop's URL, as asked for.
    pub fn host(&self) -> std::borrow::Cow<'_, str> {
        url_host(&self.url).unwrap_or_default()
    }
}

/// Most redirects a client follows in one discovery (URL and address redirects together).
pub const MAX_HOPS: usize = 10;

/// The most body bytes the probe reads from any response.
pub const BODY_CAP: usize = 256 * 1024;

/// Why a client refuses a redirect target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", content = "url", rename_all = "snake_case")]
pub enum RedirectRefusal {
    /// The Location is not a URL.
    #[error("redirect target {0:?} is not a valid URL")]
    Malformed(String),
    /// The target is not https: clients never send the request over plain HTTP.
    #[error("redirect target {0} is not https")]
    NotHttps(String),
    /// The path is not an Autodiscover XML path.
    #[error("redirect target {0} is not an /autodiscover/.../autodiscover.xml URL")]
    WrongPath(String),
    /// The target was already tried in this discovery.
    #[error("redirect loop: {0} was already tried")]
    Loop(String),
    /// A `redirectAddr` answer named an address already discovered.
    #[error("redirectAddr loop: {0} was already discovered")]
    AddressLoop(String),
    /// The hop limit was reached.
    #[error("more than {MAX_HOPS} redirects")]
    TooManyHops,
    /// The target carries credentials (`user:pass@host`): clients do not send them, and the
    /// probe does not follow them.
    #[error("redirect target {0} carries user information (user:password@)")]
    Userinfo(String),
    /// Every address of the target's host is one the probe does not connect to.
    #[error("{0}")]
    ForbiddenAddress(String),
}

/// What Microsoft 365 said about an address, as the step uses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Microsoft365Answer {
    /// The service knows the mailbox: Outlook POSTs to this URL.
    Known {
        /// The POX URL.
        url: String,
    },
    /// Anything else: the classic steps decide.
    Unknown {
        /// The step status this answer stands for (`http_status`, `not_autodiscover`, ...).
        status: StepStatus,
    },
}

/// How the step got its Microsoft 365 answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuerySource {
    /// Asked the service now.
    Queried,
    /// A cached answer younger than the cache lifetime.
    Cached,
    /// The service throttles (429/503, Retry-After): the last known answer was reused.
    Throttled,
    /// The exporter's own rate limit left no slot in time: the last known answer was reused.
    RateLimited,
    /// The query failed on the network (no answer to cache).
    Failed,
}

impl QuerySource {
    /// Every source, as `autodiscover_exporter_microsoft365_queries_total{result}` counts them.
    pub const ALL: [Self; 5] = [
        Self::Queried,
        Self::Cached,
        Self::Throttled,
        Self::RateLimited,
        Self::Failed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queried => "queried",
            Self::Cached => "cached",
            Self::Throttled => "throttled",
            Self::RateLimited => "rate_limited",
            Self::Failed => "failed",
        }
    }
}

/// The Microsoft 365 query of one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Microsoft365Query {
    /// How the answer was obtained.
    pub source: QuerySource,
    /// The answer used, when there is one (none after a failure with nothing known before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Microsoft365Answer>,
    /// How old the answer is, in seconds (0 when queried now).
    pub age_seconds: u64,
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
    /// Where the Microsoft 365 answer came from (microsoft365 step only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft365: Option<Microsoft365Query>,
    /// The URLs tried, in order.
    pub hops: Vec<Hop>,
}

impl StepTrace {
    /// A step that ended with `status` before trying any URL.
    pub fn new(step: StepId, url: String, status: StepStatus) -> Self {
        Self {
            step,
            url,
            status,
            duration_seconds: 0.0,
            srv: None,
            microsoft365: None,
            hops: Vec::new(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_fingerprints_are_x_something_enabled_in_any_case() {
        for name in [
            "X-SOAP-Enabled",
            "x-oauth-enabled",
            "X-WSSecurity-Enabled",
            "x-enabled",
        ] {
            assert!(is_exchange_fingerprint(name), "{name}");
        }
        for name in [
            "X-FEServer",
            "Enabled",
            "-enabled",
            "x-",
            "X-Powered-By",
            "ä-enabled",
            "",
        ] {
            assert!(!is_exchange_fingerprint(name), "{name}");
        }
    }

    #[test]
    fn auth_schemes_are_listed_once_in_order() {
        let mut http = HttpExchange::failed(HttpMethod::Post, HttpFailure::Timeout);
        http.www_authenticate = vec![
            "Negotiate".into(),
            "NTLM, Basic realm=\"mail\", charset=\"UTF-8\"".into(),
            "Negotiate".into(),
        ];
        assert_eq!(http.auth_schemes(), ["Negotiate", "NTLM", "Basic"]);
    }
}
