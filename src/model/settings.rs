//! What happens after Autodiscover (SPEC §3.4): the settings an endpoint announces, the service
//! endpoints they name (EWS, OAB, MAPI, IMAP, SMTP, ...) and what the probe saw at each of them.

use super::facts::{ConnectResult, HostLookup, HttpExchange, TlsFacts};
// The settings document is part of the POX answer (`model::pox`), which the facts of a step
// hold; it is re-exported here with the service vocabulary that reads it.
pub use super::pox::{NamedUrl, OtherElement, ProtocolSettings, Settings};
use super::step::StepStatus;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Most service endpoints checked per probe: a hostile settings answer can name hundreds.
pub const MAX_SERVICES: usize = 16;

/// The service vocabulary of `autodiscover_service_*{service}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Exchange Web Services (`EwsUrl`, `ASUrl`, `EmwsUrl`).
    Ews,
    /// The offline address book (`OABUrl`).
    Oab,
    /// Out of office (`OOFUrl`).
    Oof,
    /// The control panel (`EcpUrl`).
    Ecp,
    /// MAPI over HTTP (`mapiHttp` `ExternalUrl`).
    Mapi,
    /// RPC over HTTP, Outlook Anywhere (`EXPR` `Server`).
    Rpc,
    /// IMAP.
    Imap,
    /// POP3.
    Pop3,
    /// SMTP submission.
    Smtp,
}

impl ServiceKind {
    /// Every service.
    pub const ALL: [Self; 9] = [
        Self::Ews,
        Self::Oab,
        Self::Oof,
        Self::Ecp,
        Self::Mapi,
        Self::Rpc,
        Self::Imap,
        Self::Pop3,
        Self::Smtp,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ews => "ews",
            Self::Oab => "oab",
            Self::Oof => "oof",
            Self::Ecp => "ecp",
            Self::Mapi => "mapi",
            Self::Rpc => "rpc",
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
            Self::Smtp => "smtp",
        }
    }

    /// What people call it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Ews => "Exchange Web Services",
            Self::Oab => "offline address book",
            Self::Oof => "out-of-office service",
            Self::Ecp => "Exchange control panel",
            Self::Mapi => "MAPI over HTTP",
            Self::Rpc => "Outlook Anywhere (RPC over HTTP)",
            Self::Imap => "IMAP server",
            Self::Pop3 => "POP3 server",
            Self::Smtp => "SMTP server",
        }
    }

    /// Served over HTTPS (the others are mail protocols with their own greeting).
    pub fn is_https(self) -> bool {
        !matches!(self, Self::Imap | Self::Pop3 | Self::Smtp)
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a service endpoint uses TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS from the first byte (https, 993, 995, 465).
    Implicit,
    /// Plain text, then STARTTLS (IMAP `STARTTLS`, POP3 `STLS`, SMTP `STARTTLS`).
    Starttls,
    /// No TLS at all: the settings tell the client to send the password in clear text.
    None,
}

/// The endpoint's wire protocol, as `autodiscover_service_info{protocol}` names it.
pub fn protocol_label(service: ServiceKind, tls: TlsMode) -> &'static str {
    match (service, tls) {
        (ServiceKind::Imap, TlsMode::Implicit) => "imaps",
        (ServiceKind::Imap, TlsMode::Starttls) => "imap_starttls",
        (ServiceKind::Imap, TlsMode::None) => "imap",
        (ServiceKind::Pop3, TlsMode::Implicit) => "pop3s",
        (ServiceKind::Pop3, TlsMode::Starttls) => "pop3_starttls",
        (ServiceKind::Pop3, TlsMode::None) => "pop3",
        (ServiceKind::Smtp, TlsMode::Implicit) => "smtps",
        (ServiceKind::Smtp, TlsMode::Starttls) => "smtp_starttls",
        (ServiceKind::Smtp, TlsMode::None) => "smtp",
        (_, TlsMode::None) => "http",
        _ => "https",
    }
}

/// A service endpoint named by the settings, before it is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTarget {
    /// Which service.
    pub service: ServiceKind,
    /// The wire protocol (`https`, `imaps`, `smtp_starttls`, ...).
    pub protocol: String,
    /// The host name as announced (A-labels, lower case): what the certificate must cover.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The URL (HTTPS services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How TLS is used.
    pub tls: TlsMode,
    /// The settings elements that name it (`EXPR EwsUrl`, `IMAP Server`, ...).
    pub named_by: Vec<String>,
    /// Announced for clients outside the company network (EXPR, WEB External, MAPI ExternalUrl,
    /// IMAP/POP3/SMTP), as opposed to the internal URLs of `EXCH` and `Internal`.
    pub external: bool,
}

/// What a service endpoint ended with: `ok`, the step vocabulary, or one of the mail-protocol
/// failures. Declaration order is severity order (worst first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// The certificate does not cover the announced host name.
    CertNameMismatch,
    /// The certificate does not chain to a trusted root.
    CertUntrusted,
    /// The certificate has expired.
    CertExpired,
    /// The certificate is not valid yet.
    CertNotYetValid,
    /// TCP connected but the TLS handshake failed.
    TlsHandshakeFailed,
    /// The server does not offer STARTTLS, refuses it, or the upgrade failed.
    StarttlsFailed,
    /// A phase did not finish in time.
    Timeout,
    /// The mail server's greeting or capability answer is not what the protocol says.
    UnexpectedGreeting,
    /// An HTTPS service answered with another status than the expected 401.
    HttpStatus,
    /// Nothing listened on the port.
    ConnectRefused,
    /// DNS failed (server failure, refused, timeout).
    DnsError,
    /// The name does not exist or has no address records.
    DnsNoRecord,
    /// Reached, TLS and certificate valid, the protocol answered as expected.
    Ok,
}

impl ServiceStatus {
    /// Every status, worst first.
    pub const ALL: [Self; 13] = [
        Self::CertNameMismatch,
        Self::CertUntrusted,
        Self::CertExpired,
        Self::CertNotYetValid,
        Self::TlsHandshakeFailed,
        Self::StarttlsFailed,
        Self::Timeout,
        Self::UnexpectedGreeting,
        Self::HttpStatus,
        Self::ConnectRefused,
        Self::DnsError,
        Self::DnsNoRecord,
        Self::Ok,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CertNameMismatch => "cert_name_mismatch",
            Self::CertUntrusted => "cert_untrusted",
            Self::CertExpired => "cert_expired",
            Self::CertNotYetValid => "cert_not_yet_valid",
            Self::TlsHandshakeFailed => "tls_handshake_failed",
            Self::StarttlsFailed => "starttls_failed",
            Self::Timeout => "timeout",
            Self::UnexpectedGreeting => "unexpected_greeting",
            Self::HttpStatus => "http_status",
            Self::ConnectRefused => "connect_refused",
            Self::DnsError => "dns_error",
            Self::DnsNoRecord => "dns_no_record",
            Self::Ok => "ok",
        }
    }

    /// Outlook shows a certificate security alert for this status.
    pub fn is_certificate_prompt(self) -> bool {
        matches!(
            self,
            Self::CertNameMismatch
                | Self::CertUntrusted
                | Self::CertExpired
                | Self::CertNotYetValid
        )
    }

    /// The service status a step status stands for (DNS, TCP, TLS and certificate failures).
    pub fn from_step(status: StepStatus) -> Self {
        match status {
            StepStatus::CertNameMismatch => Self::CertNameMismatch,
            StepStatus::CertUntrusted => Self::CertUntrusted,
            StepStatus::CertExpired => Self::CertExpired,
            StepStatus::CertNotYetValid => Self::CertNotYetValid,
            StepStatus::TlsHandshakeFailed => Self::TlsHandshakeFailed,
            StepStatus::Timeout => Self::Timeout,
            StepStatus::ConnectRefused => Self::ConnectRefused,
            StepStatus::DnsError => Self::DnsError,
            StepStatus::DnsNoRecord | StepStatus::Excluded => Self::DnsNoRecord,
            StepStatus::HttpStatus | StepStatus::NotAutodiscover | StepStatus::RedirectInvalid => {
                Self::HttpStatus
            }
            StepStatus::EndpointFound => Self::Ok,
        }
    }

    /// One line saying what the status means.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CertNameMismatch => "certificate does not cover the host name",
            Self::CertUntrusted => "certificate is not trusted",
            Self::CertExpired => "certificate has expired",
            Self::CertNotYetValid => "certificate is not valid yet",
            Self::TlsHandshakeFailed => "TLS handshake failed",
            Self::StarttlsFailed => "STARTTLS not offered or failed",
            Self::Timeout => "timed out",
            Self::UnexpectedGreeting => "unexpected protocol answer",
            Self::HttpStatus => "unexpected HTTP status",
            Self::ConnectRefused => "connection refused",
            Self::DnsError => "DNS lookup failed",
            Self::DnsNoRecord => "the name does not resolve",
            Self::Ok => "reachable, certificate valid",
        }
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a mail protocol dialogue, as the trace shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogueLine {
    /// `C` (the probe) or `S` (the server).
    pub from: char,
    /// The line, without its line end, shortened.
    pub text: String,
}

/// What happened at one address of a service endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceAttempt {
    /// Address and port.
    pub address: SocketAddr,
    /// TCP connect result.
    pub connect: ConnectResult,
    /// Time spent connecting.
    pub connect_seconds: f64,
    /// The plain-text part of a mail dialogue (greeting, capabilities, STARTTLS) and the
    /// capabilities read after TLS on implicit-TLS ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dialogue: Vec<DialogueLine>,
    /// The server advertised STARTTLS (`STARTTLS`, `STLS`), when capabilities were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls_offered: Option<bool>,
    /// The TLS handshake and certificate judgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// The unauthenticated HTTPS request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpExchange>,
    /// The result at this address.
    pub status: ServiceStatus,
    /// Why, in a few words, when it is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Time spent on this address.
    pub duration_seconds: f64,
}

/// One service endpoint, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceCheck {
    /// What the settings named.
    #[serde(flatten)]
    pub target: ServiceTarget,
    /// The lookup of the host (absent for an IP literal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<HostLookup>,
    /// Every address tried.
    pub addresses: Vec<ServiceAttempt>,
    /// The worst result across the addresses that could be reached.
    pub status: ServiceStatus,
    /// Time spent.
    pub duration_seconds: f64,
}

/// A service endpoint where Outlook shows a certificate security alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePrompt {
    /// Which service.
    pub service: ServiceKind,
    /// Its host.
    pub host: String,
}

/// Where the settings of the report come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsSource {
    /// The endpoint URL that answered with them.
    pub url: String,
    /// Obtained with the configured credentials (an authenticated POST after the 401).
    pub authenticated: bool,
}

/// What the probe did with the configured credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialsUse {
    /// The endpoint URL they were meant for.
    pub url: String,
    /// Sent, and how the server answered; or why they were not sent.
    #[serde(flatten)]
    pub result: CredentialsResult,
}

/// Whether and how credentials were used. Never holds the credentials themselves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CredentialsResult {
    /// Sent with Basic authentication; the server answered.
    Sent {
        /// The address the request went to.
        address: SocketAddr,
        /// The authenticated POST (status, headers, body kind).
        exchange: Box<HttpExchange>,
    },
    /// Not sent, and why (a safety rule, no usable address, an unreadable file, ...).
    NotSent {
        /// Why.
        reason: String,
    },
}

impl CredentialsUse {
    /// The server answered 401 to the credentials.
    pub fn rejected(&self) -> bool {
        matches!(&self.result, CredentialsResult::Sent { exchange, .. } if exchange.status == Some(401))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_round_trip_and_statuses_are_in_severity_order() {
        for service in ServiceKind::ALL {
            let json = serde_json::to_string(&service).unwrap();
            assert_eq!(json, format!("\"{}\"", service.as_str()));
        }
        for status in ServiceStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        let mut sorted = ServiceStatus::ALL;
        sorted.sort();
        assert_eq!(sorted, ServiceStatus::ALL);
        for status in StepStatus::ALL {
            assert_eq!(
                ServiceStatus::from_step(status).is_certificate_prompt(),
                status.is_certificate_prompt(),
                "{status}"
            );
        }
    }

    #[test]
    fn protocol_labels() {
        assert_eq!(protocol_label(ServiceKind::Ews, TlsMode::Implicit), "https");
        assert_eq!(
            protocol_label(ServiceKind::Smtp, TlsMode::Starttls),
            "smtp_starttls"
        );
        assert_eq!(
            protocol_label(ServiceKind::Imap, TlsMode::Implicit),
            "imaps"
        );
    }
}
