//! The bounded vocabularies of the protocol: which step, and what a step saw.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the places Outlook looks for its Autodiscover service, in Outlook's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    /// POST `https://D/Autodiscover/Autodiscover.xml`.
    RootDomain,
    /// POST `https://autodiscover.D/Autodiscover/Autodiscover.xml`.
    AutodiscoverDomain,
    /// GET `http://autodiscover.D/Autodiscover/Autodiscover.xml`, then follow an https redirect.
    HttpRedirect,
    /// DNS SRV `_autodiscover._tcp.D`, then POST to the target.
    SrvRecord,
}

impl StepId {
    /// All steps in the order Outlook tries them.
    pub const ALL: [Self; 4] = [
        Self::RootDomain,
        Self::AutodiscoverDomain,
        Self::HttpRedirect,
        Self::SrvRecord,
    ];

    /// The label value used in metrics, JSON and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RootDomain => "root_domain",
            Self::AutodiscoverDomain => "autodiscover_domain",
            Self::HttpRedirect => "http_redirect",
            Self::SrvRecord => "srv_record",
        }
    }

    /// 1-based position in Outlook's order (the value of `autodiscover_step_reached`).
    pub fn number(self) -> u8 {
        match self {
            Self::RootDomain => 1,
            Self::AutodiscoverDomain => 2,
            Self::HttpRedirect => 3,
            Self::SrvRecord => 4,
        }
    }

    /// Endpoints found here make Outlook ask the user to allow the redirect.
    pub fn prompts_for_redirect(self) -> bool {
        matches!(self, Self::HttpRedirect | Self::SrvRecord)
    }

    /// A short human title, as the trace prints it.
    pub fn title(self) -> &'static str {
        match self {
            Self::RootDomain => "HTTPS on the mail domain",
            Self::AutodiscoverDomain => "HTTPS on the autodiscover host",
            Self::HttpRedirect => "HTTP redirect from the autodiscover host",
            Self::SrvRecord => "DNS SRV record",
        }
    }

    /// The Outlook policy value that switches this step off.
    pub fn outlook_policy(self) -> &'static str {
        match self {
            Self::RootDomain => "ExcludeHttpsRootDomain",
            Self::AutodiscoverDomain => "ExcludeHttpsAutoDiscoverDomain",
            Self::HttpRedirect => "ExcludeHttpRedirect",
            Self::SrvRecord => "ExcludeSrvRecord",
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one step (or one address within a step) ended with.
///
/// The declaration order is the severity order used when addresses of one host disagree:
/// earlier variants are worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// TLS worked but the certificate does not cover the host name asked for.
    CertNameMismatch,
    /// TLS worked but the certificate does not chain to a trusted root.
    CertUntrusted,
    /// TLS worked but the certificate has expired.
    CertExpired,
    /// TLS worked but the certificate is not valid yet.
    CertNotYetValid,
    /// TCP connected but the TLS handshake failed.
    TlsHandshakeFailed,
    /// A phase (connect, TLS, HTTP) did not finish in time.
    Timeout,
    /// A redirect pointed somewhere a client will not follow (http, wrong path, loop, too many hops).
    RedirectInvalid,
    /// The server answered with a status that is not an Autodiscover answer (404, 500, ...).
    HttpStatus,
    /// The server answered 200 with something other than an Autodiscover response.
    NotAutodiscover,
    /// Nothing listened on the port.
    ConnectRefused,
    /// DNS failed (server failure, refused, timeout): the name could not be resolved.
    DnsError,
    /// The name does not exist or has no address records (NXDOMAIN, NODATA, no SRV).
    DnsNoRecord,
    /// An Autodiscover service answered here.
    EndpointFound,
    /// Switched off by the domain's step policy.
    Excluded,
}

impl StepStatus {
    /// Every status, in severity order.
    pub const ALL: [Self; 14] = [
        Self::CertNameMismatch,
        Self::CertUntrusted,
        Self::CertExpired,
        Self::CertNotYetValid,
        Self::TlsHandshakeFailed,
        Self::Timeout,
        Self::RedirectInvalid,
        Self::HttpStatus,
        Self::NotAutodiscover,
        Self::ConnectRefused,
        Self::DnsError,
        Self::DnsNoRecord,
        Self::EndpointFound,
        Self::Excluded,
    ];

    /// The label value used in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndpointFound => "endpoint_found",
            Self::DnsNoRecord => "dns_no_record",
            Self::DnsError => "dns_error",
            Self::ConnectRefused => "connect_refused",
            Self::Timeout => "timeout",
            Self::TlsHandshakeFailed => "tls_handshake_failed",
            Self::CertNameMismatch => "cert_name_mismatch",
            Self::CertUntrusted => "cert_untrusted",
            Self::CertExpired => "cert_expired",
            Self::CertNotYetValid => "cert_not_yet_valid",
            Self::HttpStatus => "http_status",
            Self::NotAutodiscover => "not_autodiscover",
            Self::RedirectInvalid => "redirect_invalid",
            Self::Excluded => "excluded",
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

    /// One line saying what the status means, for traces and the status page.
    pub fn describe(self) -> &'static str {
        match self {
            Self::EndpointFound => "an Autodiscover service answered",
            Self::DnsNoRecord => "the name does not resolve",
            Self::DnsError => "DNS lookup failed",
            Self::ConnectRefused => "connection refused",
            Self::Timeout => "timed out",
            Self::TlsHandshakeFailed => "TLS handshake failed",
            Self::CertNameMismatch => "certificate does not cover the host name",
            Self::CertUntrusted => "certificate is not trusted",
            Self::CertExpired => "certificate has expired",
            Self::CertNotYetValid => "certificate is not valid yet",
            Self::HttpStatus => "answered with a non-Autodiscover HTTP status",
            Self::NotAutodiscover => "answered with something that is not Autodiscover",
            Self::RedirectInvalid => "redirect that clients refuse to follow",
            Self::Excluded => "excluded by policy",
        }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict of a whole probe, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The probe itself could not run (no resolver reachable).
    ProbeError,
    /// Outlook reaches at least one certificate security alert.
    CertificatePrompt,
    /// No step finds an endpoint: new profiles cannot be configured.
    NotFound,
    /// The endpoint is found through the HTTP redirect or the SRV record: Outlook asks first.
    RedirectPrompt,
    /// The endpoint is found silently on the mail domain or the autodiscover host.
    Ok,
}

impl Outcome {
    /// Every outcome, worst first.
    pub const ALL: [Self; 5] = [
        Self::ProbeError,
        Self::CertificatePrompt,
        Self::NotFound,
        Self::RedirectPrompt,
        Self::Ok,
    ];

    /// The label value used in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProbeError => "probe_error",
            Self::CertificatePrompt => "certificate_prompt",
            Self::NotFound => "not_found",
            Self::RedirectPrompt => "redirect_prompt",
            Self::Ok => "ok",
        }
    }

    /// What the verdict means for the people using Outlook.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ProbeError => "the probe could not run",
            Self::CertificatePrompt => "Outlook shows a certificate security alert",
            Self::NotFound => "Outlook finds no Autodiscover service",
            Self::RedirectPrompt => "Outlook asks users to allow a redirect",
            Self::Ok => "Outlook finds its server silently",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_round_trip_through_serde() {
        for step in StepId::ALL {
            let json = serde_json::to_string(&step).unwrap();
            assert_eq!(json, format!("\"{}\"", step.as_str()));
        }
        for status in StepStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
    }

    #[test]
    fn severity_order_puts_prompts_first_and_success_last() {
        let mut sorted = StepStatus::ALL;
        sorted.sort();
        assert_eq!(sorted, StepStatus::ALL);
        assert!(StepStatus::CertNameMismatch < StepStatus::HttpStatus);
        assert!(StepStatus::HttpStatus < StepStatus::EndpointFound);
        assert!(Outcome::CertificatePrompt < Outcome::NotFound);
    }
}
