//! Findings: what is wrong (or worth knowing) and how to fix it. The rules that produce them live
//! in `diagnose`; the vocabulary lives here so every renderer can read it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Certificates expiring within this many days get a warning (finding, status page, alert).
pub const EXPIRY_WARNING_DAYS: f64 = 21.0;
/// Certificates expiring within this many days are critical (status page, alert).
pub const EXPIRY_CRITICAL_DAYS: f64 = 7.0;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Users are affected now.
    Error,
    /// Users will be affected, or some of them are.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// The label as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

macro_rules! finding_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)+) => {
        /// The stable identifier of a finding: dashboards, alerts and scripts match on it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum FindingCode {
            $($(#[$doc])* $variant,)+
        }

        impl FindingCode {
            /// Every code.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The code as serialised.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

finding_codes! {
    /// No DNS server answered any question of the probe.
    ResolverUnreachable = "resolver_unreachable",
    /// A redirect was refused (http, wrong path, loop, too many hops).
    RedirectRefused = "redirect_refused",
    /// A step ran out of time.
    StepTimeout = "step_timeout",
    /// A step is switched off by policy.
    StepExcluded = "step_excluded",
    /// A certificate does not cover the host name asked for.
    CertificateNameMismatch = "certificate_name_mismatch",
    /// A certificate does not chain to a trusted root.
    CertificateUntrusted = "certificate_untrusted",
    /// A certificate has expired.
    CertificateExpired = "certificate_expired",
    /// A certificate is not valid yet.
    CertificateNotYetValid = "certificate_not_yet_valid",
    /// A certificate expires soon.
    CertificateExpiring = "certificate_expiring",
    /// A certificate lists an internal name.
    CertificateInternalName = "certificate_internal_name",
    /// The Exchange server answers behind a certificate prompt.
    ExchangeBehindCertificatePrompt = "exchange_behind_certificate_prompt",
    /// Addresses of one host gave different results.
    AddressesDisagree = "addresses_disagree",
    /// The Autodiscover service answered with an error response.
    AutodiscoverErrorResponse = "autodiscover_error_response",
    /// A 401 without Exchange's fingerprint: a password box from an unknown server.
    PasswordPromptUnknownServer = "password_prompt_unknown_server",
    /// A web page answers at the Autodiscover path.
    WebPageAtAutodiscoverPath = "web_page_at_autodiscover_path",
    /// A response was larger than the probe reads.
    ResponseTooLarge = "response_too_large",
    /// A DNS question failed.
    DnsFailure = "dns_failure",
    /// The SRV record says "no service".
    SrvNoService = "srv_no_service",
    /// An SRV record names a port other than 443.
    SrvPortIgnored = "srv_port_ignored",
    /// No Autodiscover endpoint found.
    NoAutodiscover = "no_autodiscover",
    /// The endpoint makes Outlook ask to allow a redirect.
    RedirectPrompt = "redirect_prompt",
    /// The SRV record is missing while another step prompts.
    SrvTargetMissing = "srv_target_missing",
    /// The server sends an incomplete chain that Windows completes from the AIA URL.
    CertificateChainIncomplete = "certificate_chain_incomplete",
    /// The mail domain does not exist in DNS.
    DomainNotFound = "domain_not_found",
    /// Microsoft 365 finds the mailbox; clients without that shortcut meet a worse verdict.
    ClassicClientsAffected = "classic_clients_affected",
    /// Microsoft 365 hosts the mailbox but autodiscover.D does not point at Microsoft.
    AutodiscoverNotMicrosoft365 = "autodiscover_not_microsoft365",
    /// The endpoint host is not the expected one.
    UnexpectedEndpointHost = "unexpected_endpoint_host",
    /// The endpoint step is not the expected one.
    UnexpectedEndpointStep = "unexpected_endpoint_step",
    /// A service endpoint named by the settings presents a certificate Outlook alerts on.
    ServiceCertificatePrompt = "service_certificate_prompt",
    /// A service endpoint named by the settings cannot be used (DNS, TCP, TLS, protocol).
    ServiceUnavailable = "service_unavailable",
    /// The endpoint answered 401 to the configured credentials.
    CredentialsRejected = "credentials_rejected",
    /// Credentials are configured but were not sent (a safety rule, an unreadable file).
    CredentialsNotSent = "credentials_not_sent",
    /// The settings name an internal host or a private address for use outside the network.
    SettingsInternalName = "settings_internal_name",
    /// The verdict got worse within 7 days of a change of the domain's name servers.
    RegressedAfterDelegationChange = "regressed_after_delegation_change",
    /// The exporter ran out of file descriptors, buffer space or connection slots.
    LocalResourceExhausted = "local_resource_exhausted",
    /// A host publishes more addresses than a probe tries.
    TooManyAddresses = "too_many_addresses",
    /// The SRV name publishes more records than a probe uses.
    SrvRecordsCapped = "srv_records_capped",
    /// A host resolves to an address the probe refuses (link-local, unspecified, multicast, or
    /// private with `refuse_private_addresses`).
    AddressRefused = "address_refused",
    /// A redirect, SRV record or Microsoft 365 leads to a host written as an IP address.
    IpLiteralHost = "ip_literal_host",
    /// A redirect, SRV record or Microsoft 365 leads to a loopback or private address.
    InternalAddress = "internal_address",
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// A stable identifier.
    pub code: FindingCode,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// A Unix time as an ISO date, as findings and pages print certificate dates.
pub fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_pinned_names() {
        let pinned = [
            "resolver_unreachable",
            "redirect_refused",
            "step_timeout",
            "step_excluded",
            "certificate_name_mismatch",
            "certificate_untrusted",
            "certificate_expired",
            "certificate_not_yet_valid",
            "certificate_expiring",
            "certificate_internal_name",
            "exchange_behind_certificate_prompt",
            "addresses_disagree",
            "autodiscover_error_response",
            "password_prompt_unknown_server",
            "web_page_at_autodiscover_path",
            "response_too_large",
            "dns_failure",
            "srv_no_service",
            "srv_port_ignored",
            "no_autodiscover",
            "redirect_prompt",
            "srv_target_missing",
            "unexpected_endpoint_host",
            "unexpected_endpoint_step",
            "service_certificate_prompt",
            "service_unavailable",
            "credentials_rejected",
            "credentials_not_sent",
            "settings_internal_name",
            "certificate_chain_incomplete",
            "domain_not_found",
            "classic_clients_affected",
            "autodiscover_not_microsoft365",
            "regressed_after_delegation_change",
            "local_resource_exhausted",
            "too_many_addresses",
            "srv_records_capped",
            "address_refused",
            "ip_literal_host",
            "internal_address",
        ];
        for name in pinned {
            assert!(
                FindingCode::ALL.iter().any(|c| c.as_str() == name),
                "finding code {name} is gone"
            );
        }
        for code in FindingCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_767_225_600), "2026-01-01");
    }
}
