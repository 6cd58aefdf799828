//! The bounded vocabularies of the protocol: which step, and what a step saw.

use super::address::MailAddress;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a step starts; each kind has one runner in `probe::steps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepRequest {
    /// Anonymous GET of Microsoft 365's JSON Autodiscover, then the POX POST to the URL it names.
    Microsoft365Query,
    /// POX POST to the step URL.
    HttpsPost,
    /// Plain GET of the step URL; an https redirect is followed with the POX POST.
    HttpGetThenPost,
    /// SRV lookup; POX POST to the targets in RFC 2782 order.
    SrvLookup,
}

/// Where a step's URL comes from: the probed address and the configured Microsoft 365 base.
#[derive(Clone, Copy, Debug)]
pub struct StepTarget<'a> {
    /// The address Outlook discovers.
    pub address: &'a MailAddress,
    /// Base URL of the Microsoft 365 query (`microsoft365.url`), without a trailing slash.
    pub microsoft365_base: &'a str,
}

impl StepTarget<'_> {
    /// The domain's A-label form.
    pub fn domain(&self) -> &str {
        self.address.domain().ascii()
    }
}

/// One row of the step table: everything the rest of the program needs to know about a step.
#[derive(Debug)]
pub struct StepSpec {
    /// Which step.
    pub id: StepId,
    /// The label value in metrics, JSON and configuration.
    pub label: &'static str,
    /// The value of `autodiscover_step_reached` (an id, not a position: stable forever).
    pub metric_number: u8,
    /// A short human title, as the trace prints it.
    pub title: &'static str,
    /// The Outlook registry policy value that switches this step off.
    pub outlook_policy: &'static str,
    /// Endpoints found here make Outlook ask the user to allow the redirect.
    pub redirect_prompt: bool,
    /// How the step starts.
    pub request: StepRequest,
    /// The step's first URL.
    pub url: fn(&StepTarget<'_>) -> String,
}

macro_rules! step_table {
    ($($(#[$doc:meta])* $variant:ident {
        label: $label:literal,
        metric_number: $number:literal,
        title: $title:literal,
        outlook_policy: $policy:literal,
        redirect_prompt: $redirect:literal,
        request: $request:ident,
        url: $url:expr,
    })+) => {
        /// One of the places Outlook looks for its Autodiscover service, in Outlook's order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum StepId {
            $($(#[$doc])* $variant,)+
        }

        impl StepId {
            /// All steps in the order Outlook tries them: the table's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];
        }

        /// The step table, in Outlook's order.
        pub static STEPS: &[StepSpec] = &[$(StepSpec {
            id: StepId::$variant,
            label: $label,
            metric_number: $number,
            title: $title,
            outlook_policy: $policy,
            redirect_prompt: $redirect,
            request: StepRequest::$request,
            url: $url,
        },)+];
    };
}

step_table! {
    /// Microsoft 365 "Direct Connect": Outlook 2016+ asks Microsoft 365 about the mailbox first.
    Microsoft365 {
        label: "microsoft365",
        metric_number: 5,
        title: "Microsoft 365 (Direct Connect)",
        outlook_policy: "ExcludeExplicitO365Endpoint",
        redirect_prompt: false,
        request: Microsoft365Query,
        url: |t| format!(
            "{}/autodiscover/autodiscover.json/v1.0/{}?Protocol=AutodiscoverV1",
            t.microsoft365_base,
            t.address.ascii()
        ),
    }
    /// POST `https://D/Autodiscover/Autodiscover.xml`.
    RootDomain {
        label: "root_domain",
        metric_number: 1,
        title: "HTTPS on the mail domain",
        outlook_policy: "ExcludeHttpsRootDomain",
        redirect_prompt: false,
        request: HttpsPost,
        url: |t| format!("https://{}{AUTODISCOVER_PATH}", t.domain()),
    }
    /// POST `https://autodiscover.D/Autodiscover/Autodiscover.xml`.
    AutodiscoverDomain {
        label: "autodiscover_domain",
        metric_number: 2,
        title: "HTTPS on the autodiscover host",
        outlook_policy: "ExcludeHttpsAutoDiscoverDomain",
        redirect_prompt: false,
        request: HttpsPost,
        url: |t| format!("https://autodiscover.{}{AUTODISCOVER_PATH}", t.domain()),
    }
    /// GET `http://autodiscover.D/Autodiscover/Autodiscover.xml`, then follow an https redirect.
    HttpRedirect {
        label: "http_redirect",
        metric_number: 3,
        title: "HTTP redirect from the autodiscover host",
        outlook_policy: "ExcludeHttpRedirect",
        redirect_prompt: true,
        request: HttpGetThenPost,
        url: |t| format!("http://autodiscover.{}{AUTODISCOVER_PATH}", t.domain()),
    }
    /// DNS SRV `_autodiscover._tcp.D`, then POST to the target.
    SrvRecord {
        label: "srv_record",
        metric_number: 4,
        title: "DNS SRV record",
        outlook_policy: "ExcludeSrvRecord",
        redirect_prompt: true,
        request: SrvLookup,
        url: |t| format!("dns:_autodiscover._tcp.{}?type=SRV", t.domain()),
    }
}

/// The path every Autodiscover URL is built with.
pub const AUTODISCOVER_PATH: &str = "/Autodiscover/Autodiscover.xml";

impl StepId {
    /// The step's row of the table.
    pub fn spec(self) -> &'static StepSpec {
        // The table is generated from the same list as the enum, in the same order, so the
        // discriminant is the row index (pinned by a test).
        &STEPS[self as usize]
    }

    /// The label value used in metrics, JSON and configuration.
    pub fn as_str(self) -> &'static str {
        self.spec().label
    }

    /// The value of `autodiscover_step_reached`.
    pub fn number(self) -> u8 {
        self.spec().metric_number
    }

    /// Endpoints found here make Outlook ask the user to allow the redirect.
    pub fn prompts_for_redirect(self) -> bool {
        self.spec().redirect_prompt
    }

    /// A short human title, as the trace prints it.
    pub fn title(self) -> &'static str {
        self.spec().title
    }

    /// The Outlook policy value that switches this step off.
    pub fn outlook_policy(self) -> &'static str {
        self.spec().outlook_policy
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
    fn the_step_table_is_in_enum_order_with_unique_ids_and_numbers() {
        assert_eq!(STEPS.len(), StepId::ALL.len());
        let mut numbers = std::collections::HashSet::new();
        for (index, spec) in STEPS.iter().enumerate() {
            assert_eq!(spec.id as usize, index);
            assert_eq!(StepId::ALL[index], spec.id);
            assert!(
                numbers.insert(spec.metric_number),
                "{} reused",
                spec.metric_number
            );
        }
        let pinned: Vec<(&str, u8)> = STEPS.iter().map(|s| (s.label, s.metric_number)).collect();
        assert_eq!(
            pinned,
            [
                ("microsoft365", 5),
                ("root_domain", 1),
                ("autodiscover_domain", 2),
                ("http_redirect", 3),
                ("srv_record", 4)
            ]
        );
    }

    #[test]
    fn step_urls_use_the_a_label_domain() {
        let address = MailAddress::parse("someone@münchen.example").unwrap();
        let target = StepTarget {
            address: &address,
            microsoft365_base: "https://outlook.office365.com",
        };
        let urls: Vec<String> = STEPS.iter().map(|s| (s.url)(&target)).collect();
        assert_eq!(
            urls,
            [
                "https://outlook.office365.com/autodiscover/autodiscover.json/v1.0/someone@xn--mnchen-3ya.example?Protocol=AutodiscoverV1",
                "https://xn--mnchen-3ya.example/Autodiscover/Autodiscover.xml",
                "https://autodiscover.xn--mnchen-3ya.example/Autodiscover/Autodiscover.xml",
                "http://autodiscover.xn--mnchen-3ya.example/Autodiscover/Autodiscover.xml",
                "dns:_autodiscover._tcp.xn--mnchen-3ya.example?type=SRV",
            ]
        );
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
