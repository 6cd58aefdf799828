//! Findings: what is wrong (or worth knowing) and how to fix it, in an Exchange admin's terms.

use crate::model::facts::{
    AddressAttempt, BodyKind, DnsAnswer, Hop, HopOrigin, RedirectRefusal, StepTrace, Validity,
    url_host,
};
use crate::model::finding::{EXPIRY_WARNING_DAYS, Finding, FindingCode, Severity, date};
use crate::model::pox::PoxResponse;
use crate::model::report::ProbeReport;
use crate::model::step::{Outcome, StepId, StepStatus};
use crate::protocol::{destination, srv, verdict};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// What the admin expects for a domain; a finding when reality differs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The host of the endpoint URL.
    #[serde(default)]
    pub endpoint_host: Option<String>,
    /// The step that finds the endpoint.
    #[serde(default)]
    pub endpoint_step: Option<StepId>,
}

/// Explains a report.
pub fn explain(report: &ProbeReport, expect: &Expectations) -> Vec<Finding> {
    let mut out = Findings::default();
    if report.outcome == Outcome::ProbeError {
        let steps = || report.discoveries().flat_map(|(_, steps)| steps.iter());
        if let Some(failure) = verdict::local_failure(steps()) {
            out.push(
                Severity::Error,
                FindingCode::LocalResourceExhausted,
                format!(
                    "The exporter ran out of a local resource during this probe ({failure}), so \
                     nothing can be concluded about {}.",
                    report.domain
                ),
                "Raise the exporter's file descriptor limit (ulimit -n, LimitNOFILE=), lower \
                 `concurrency`, or run more replicas with --shard; process_open_fds and \
                 process_max_fds show the headroom."
                    .into(),
            );
        }
        if verdict::resolver_unusable(steps()) {
            out.push(
                Severity::Error,
                FindingCode::ResolverUnreachable,
                "No DNS server answered any question of this probe, so nothing could be checked."
                    .into(),
                "Check `resolver.nameservers` (or /etc/resolv.conf) and that the exporter can \
                 reach them on port 53."
                    .into(),
            );
        }
        return out.finish();
    }
    let endpoint_step = report.endpoint.as_ref().map(|e| e.step);
    for (address, steps) in report.discoveries() {
        let domain = address.domain().ascii();
        for step in steps {
            let unreached =
                endpoint_step.is_some_and(|e| step.step > e) && *address == report.address;
            explain_step(&mut out, domain, step, unreached);
        }
    }
    explain_srv(&mut out, report);
    explain_verdict(&mut out, report);
    explain_expectations(&mut out, report, expect);
    out.finish()
}

#[derive(Default)]
struct Findings {
    list: Vec<Finding>,
    seen: HashSet<(FindingCode, String)>,
}

impl Findings {
    fn push(&mut self, severity: Severity, code: FindingCode, message: String, hint: String) {
        if self.seen.insert((code, message.clone())) {
            self.list.push(Finding {
                severity,
                code,
                message,
                hint,
            });
        }
    }

    fn finish(mut self) -> Vec<Finding> {
        self.list.sort_by_key(|f| f.severity);
        self.list
    }
}

fn explain_step(out: &mut Findings, domain: &str, step: &StepTrace, unreached: bool) {
    let prompt_severity = if unreached {
        Severity::Warning
    } else {
        Severity::Error
    };
    let unreached_note = if unreached {
        " Outlook does not reach this step today because an earlier step answers, but it will \
         as soon as that one fails."
    } else {
        ""
    };
    for hop in &step.hops {
        explain_certificates(out, domain, step.step, hop, prompt_severity, unreached_note);
        explain_addresses(out, hop);
        explain_answers(out, step, hop);
        explain_destinations(out, hop);
        if let Some(reason) = &hop.redirect_refused
            && !matches!(reason, RedirectRefusal::ForbiddenAddress(_))
        {
            out.push(
                Severity::Warning,
                FindingCode::RedirectRefused,
                format!(
                    "{} redirects where Outlook will not follow: {reason}.",
                    hop.url
                ),
                "Redirect to an https URL whose path is /autodiscover/autodiscover.xml, without \
                 loops (at most 10 hops)."
                    .into(),
            );
        }
        if let Some(lookup) = &hop.lookup {
            for (kind, answer) in [("A", &lookup.a), ("AAAA", &lookup.aaaa)] {
                explain_dns_failure(out, &lookup.host, kind, answer);
            }
            if lookup.addresses_published > lookup.addresses.len() {
                out.push(
                    Severity::Warning,
                    FindingCode::TooManyAddresses,
                    format!(
                        "{} publishes {} addresses; the probe tries {} of them (IPv4 and IPv6 \
                         shared), the others are not checked.",
                        lookup.host,
                        lookup.addresses_published,
                        lookup.addresses.len()
                    ),
                    "Clients try the addresses in turn and every dead one costs a timeout: \
                     publish only the servers that serve Autodiscover."
                        .into(),
                );
            }
        }
    }
    if step.status == StepStatus::Timeout {
        out.push(
            Severity::Warning,
            FindingCode::StepTimeout,
            format!(
                "{} ({}) did not answer in time: Outlook waits for it before it tries the next \
                 step, so discovery is slow.",
                step.url, step.step
            ),
            "Make the server answer, or have the firewall reject connections (RST) instead of \
             dropping them, or remove the DNS record."
                .into(),
        );
    }
    if step.status == StepStatus::Excluded {
        out.push(
            Severity::Info,
            FindingCode::StepExcluded,
            format!(
                "{} is excluded by policy for this domain (Outlook's {}).",
                step.step,
                step.step.outlook_policy()
            ),
            "Only the clients with that policy behave like this probe; others still try the step."
                .into(),
        );
    }
}

/// Addresses the probe refused, and hosts reached by a redirect, an SRV record or Microsoft 365
/// that are IP literals or internal addresses.
fn explain_destinations(out: &mut Findings, hop: &Hop) {
    let host = hop.host();
    for refused in &hop.refused_addresses {
        out.push(
            Severity::Warning,
            FindingCode::AddressRefused,
            format!(
                "{host} resolves to {}, {}: the probe does not connect there.",
                refused.address,
                refused.reason.describe()
            ),
            "Publish only public addresses of the Autodiscover service for external clients; \
             an address like this one reaches the client's own host or network."
                .into(),
        );
    }
    if hop.origin == HopOrigin::Start {
        return;
    }
    let how = match &hop.origin {
        HopOrigin::SrvTarget { .. } => "an SRV record",
        HopOrigin::Microsoft365 => "Microsoft 365",
        _ => "a redirect",
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        out.push(
            Severity::Info,
            FindingCode::IpLiteralHost,
            format!("{how} leads to {}, whose host is an IP address.", hop.url),
            "Clients check the certificate against that address, which public certificates \
             rarely list: point the redirect at a host name."
                .into(),
        );
    }
    for attempt in &hop.addresses {
        let ip = attempt.address.ip();
        if destination::is_internal(ip) {
            out.push(
                Severity::Info,
                FindingCode::InternalAddress,
                format!(
                    "{how} leads to {host}, which resolves to the internal address {ip}: only \
                     clients inside that network reach it."
                ),
                "Fine for a lab or a split-horizon setup; external clients need a public \
                 address (set refuse_private_addresses: true to have the probe refuse these)."
                    .into(),
            );
        }
    }
}

fn explain_certificates(
    out: &mut Findings,
    domain: &str,
    step: StepId,
    hop: &Hop,
    severity: Severity,
    note: &str,
) {
    let host = hop.host().to_owned();
    let mut seen_leaves = HashSet::new();
    for attempt in &hop.addresses {
        let Some(tls) = &attempt.tls else { continue };
        let (Some(leaf), Some(verdict)) = (tls.leaf(), tls.verdict.as_ref()) else {
            continue;
        };
        if !seen_leaves.insert(leaf.fingerprint_sha256.clone()) {
            continue;
        }
        let names = if leaf.dns_names.is_empty() {
            format!("no DNS names (subject {})", leaf.subject)
        } else {
            leaf.dns_names.join(", ")
        };
        let where_ = format!("https://{host} ({step}, {})", attempt.address.ip());
        if !verdict.name_matches {
            let mut message = format!(
                "{where_} presents a certificate for {names}; Outlook checks it against {host} and \
                 shows a security alert.{note}"
            );
            if let Some(lookup) = &hop.lookup
                && let Some(last) = lookup.cname_chain.last()
            {
                message.push_str(&format!(
                    " {host} is a CNAME to {}: the certificate must still list {host}.",
                    last.target
                ));
            }
            out.push(
                severity,
                FindingCode::CertificateNameMismatch,
                message,
                name_mismatch_hint(domain, step, &host, leaf.dns_names.first()),
            );
        }
        if !verdict.trusted {
            let what = if leaf.self_signed {
                "a self-signed certificate".to_owned()
            } else {
                format!(
                    "a certificate issued by {} that is not trusted",
                    leaf.issuer
                )
            };
            out.push(
                severity,
                FindingCode::CertificateUntrusted,
                format!(
                    "{where_} presents {what}{}.{note}",
                    verdict
                        .trust_error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ),
                format!(
                    "Install a certificate for {host} from a public CA. If a private CA is \
                     intended, every Outlook client must trust its root (and the exporter needs \
                     it in tls.ca_file)."
                ),
            );
        }
        match verdict.validity {
            Validity::Expired => out.push(
                severity,
                FindingCode::CertificateExpired,
                match (&verdict.validity_error, &leaf.parse_error) {
                    (Some(chain), _) => format!("{where_}: {chain}.{note}"),
                    (None, Some(_)) => format!(
                        "{where_}: the certificate has expired (its dates cannot be read by \
                         the probe).{note}"
                    ),
                    (None, None) => format!(
                        "{where_}: the certificate expired {} days ago (notAfter {}).{note}",
                        (-leaf.days_to_expiry).floor(),
                        date(leaf.not_after)
                    ),
                },
                format!(
                    "Renew the certificate for {host} and bind it on every server behind that name."
                ),
            ),
            Validity::NotYetValid => out.push(
                severity,
                FindingCode::CertificateNotYetValid,
                match &verdict.validity_error {
                    Some(chain) => format!("{where_}: {chain}.{note}"),
                    None => format!(
                        "{where_}: the certificate is valid only from {}.{note}",
                        date(leaf.not_before)
                    ),
                },
                "Check the server's clock and the certificate's dates; bind a certificate that is \
                 valid now."
                    .into(),
            ),
            Validity::Valid
                if leaf.parse_error.is_none() && leaf.days_to_expiry <= EXPIRY_WARNING_DAYS =>
            {
                out.push(
                    Severity::Warning,
                    FindingCode::CertificateExpiring,
                    format!(
                        "The certificate of {host} ({step}, {}) expires in {} days ({}).",
                        attempt.address.ip(),
                        leaf.days_to_expiry.floor(),
                        date(leaf.not_after)
                    ),
                    format!(
                        "Renew it before {} and bind the new one on every server behind {host}.",
                        date(leaf.not_after)
                    ),
                );
            }
            Validity::Valid => {}
        }
        let internal = leaf.internal_names();
        if !internal.is_empty() {
            out.push(
                Severity::Warning,
                FindingCode::CertificateInternalName,
                format!(
                    "The certificate of {host} lists internal names: {}. Public CAs stopped \
                     issuing such names in 2015, so the next renewal will drop them.",
                    internal.join(", ")
                ),
                "Point internal URLs (e.g. Set-ClientAccessService -AutoDiscoverServiceInternalUri) \
                 at a public name on the certificate and use split DNS for it."
                    .into(),
            );
        }
        let exchange_behind = attempt
            .http
            .as_ref()
            .is_some_and(|h| h.status == Some(401) && !h.auth_schemes().is_empty());
        if !verdict.is_valid() && exchange_behind {
            out.push(
                severity,
                FindingCode::ExchangeBehindCertificatePrompt,
                format!(
                    "Behind the certificate alert at {where_} an Autodiscover service asks for \
                     credentials: this is your Exchange server, and it is the certificate that is \
                     wrong."
                ),
                format!("Bind a certificate that lists {host}, is trusted and current."),
            );
        }
    }
}

fn name_mismatch_hint(
    domain: &str,
    step: StepId,
    host: &str,
    first_name: Option<&String>,
) -> String {
    let example = first_name.map_or_else(|| "a name on the certificate".to_owned(), Clone::clone);
    match step {
        StepId::Microsoft365 => format!(
            "Microsoft 365 names {host} for this mailbox: add {host} to the certificate served \
             there, or fix the hybrid configuration (or the TLS-inspecting proxy) that presents \
             another certificate."
        ),
        StepId::RootDomain => format!(
            "Remove the A/AAAA record of {domain}, close port 443 there, or add {domain} to that \
             certificate. Outlook tries https://{domain} first, so every user meets this alert \
             (a per-PC workaround is the ExcludeHttpsRootDomain policy)."
        ),
        StepId::AutodiscoverDomain => format!(
            "Add {host} to the certificate, or delete the {host} record and publish SRV \
             _autodiscover._tcp.{domain} 0 0 443 {example} (a name the certificate covers)."
        ),
        StepId::HttpRedirect => format!(
            "Make the redirect point at a host whose certificate lists it, or add {host} to the \
             certificate of that server."
        ),
        StepId::SrvRecord => format!(
            "Point SRV _autodiscover._tcp.{domain} at a name the certificate covers (e.g. \
             {example}), or add {host} to the certificate."
        ),
    }
}

fn explain_addresses(out: &mut Findings, hop: &Hop) {
    if hop.addresses.len() < 2 {
        return;
    }
    let first = &hop.addresses[0];
    let leaf = |a: &AddressAttempt| {
        a.tls
            .as_ref()
            .and_then(|t| t.leaf())
            .map(|l| l.fingerprint_sha256.clone())
    };
    let disagree = hop
        .addresses
        .iter()
        .any(|a| a.status != first.status || leaf(a) != leaf(first));
    if !disagree {
        return;
    }
    let detail: Vec<String> = hop
        .addresses
        .iter()
        .map(|a| {
            let fp = leaf(a)
                .map(|f| format!(", certificate {}", &f[..16]))
                .unwrap_or_default();
            format!("{} → {}{fp}", a.address.ip(), a.status)
        })
        .collect();
    out.push(
        Severity::Warning,
        FindingCode::AddressesDisagree,
        format!(
            "{} resolves to {} addresses that answer differently: {}.",
            hop.host(),
            hop.addresses.len(),
            detail.join("; ")
        ),
        format!(
            "Clients land on any of them: make every server behind {} serve the same \
             certificate and service, or remove stale A/AAAA records.",
            hop.host()
        ),
    );
}

fn explain_answers(out: &mut Findings, step: &StepTrace, hop: &Hop) {
    for attempt in &hop.addresses {
        let valid_tls = attempt
            .tls
            .as_ref()
            .and_then(|t| t.verdict.as_ref())
            .is_none_or(|v| v.is_valid());
        let Some(http) = &attempt.http else { continue };
        if !valid_tls {
            continue;
        }
        match (&http.body, http.status) {
            (
                BodyKind::Autodiscover {
                    response: PoxResponse::Error { code, message },
                },
                _,
            ) => {
                out.push(
                    Severity::Warning,
                    FindingCode::AutodiscoverErrorResponse,
                    format!(
                        "{} answered Autodiscover error {code} ({message}) for the probe address.",
                        hop.url
                    ),
                    "Error 500 means the server does not know the address: set `email:` to a real \
                     mailbox for this domain. Other codes point at the server's configuration."
                        .into(),
                );
            }
            (_, Some(401)) if attempt.status == StepStatus::EndpointFound => {
                let exchange = attempt.exchanges().any(|e| e.looks_like_exchange());
                let schemes = http.auth_schemes();
                let only_basic = schemes.iter().all(|s| s.eq_ignore_ascii_case("basic"));
                let fingerprint_read = attempt
                    .fingerprint
                    .as_ref()
                    .is_some_and(|f| f.status.is_some());
                if !exchange && only_basic && fingerprint_read {
                    out.push(
                        Severity::Warning,
                        FindingCode::PasswordPromptUnknownServer,
                        format!(
                            "{} asks for a password (Basic) without Exchange's Autodiscover headers: \
                             Outlook would show a password box for a server that may not be Exchange.",
                            hop.url
                        ),
                        "Make sure this URL is served by Exchange; otherwise stop it from answering \
                         the Autodiscover path with 401."
                            .into(),
                    );
                }
            }
            (BodyKind::Html, Some(200)) if step.step == StepId::RootDomain => {
                out.push(
                    Severity::Info,
                    FindingCode::WebPageAtAutodiscoverPath,
                    format!(
                        "{} answers 200 with a web page; Outlook moves on to the next step.",
                        hop.url
                    ),
                    "Harmless while the certificate is valid. Answering 404 on \
                     /autodiscover/autodiscover.xml is cleaner."
                        .into(),
                );
            }
            (BodyKind::TooLarge, _) => out.push(
                Severity::Warning,
                FindingCode::ResponseTooLarge,
                format!(
                    "{} answered with a body larger than {} KiB; the probe stopped reading.",
                    hop.url,
                    crate::model::facts::BODY_CAP / 1024
                ),
                "An Autodiscover answer is a few kilobytes: this server is not an Autodiscover \
                 service."
                    .into(),
            ),
            _ => {}
        }
    }
}

fn explain_dns_failure(out: &mut Findings, name: &str, kind: &str, answer: &DnsAnswer) {
    if matches!(
        answer,
        DnsAnswer::ServFail | DnsAnswer::Refused | DnsAnswer::Timeout | DnsAnswer::Error { .. }
    ) {
        out.push(
            Severity::Warning,
            FindingCode::DnsFailure,
            format!(
                "DNS lookup of {name} ({kind}) failed: {}.",
                answer.describe()
            ),
            "Check the zone at the DNS provider (delegation, DNSSEC, server health): clients \
             treat a failed lookup as a missing record and move on."
                .into(),
        );
    }
}

fn explain_srv(out: &mut Findings, report: &ProbeReport) {
    let Some(step) = report.step(StepId::SrvRecord) else {
        return;
    };
    let Some(lookup) = &step.srv else { return };
    explain_dns_failure(out, &lookup.name, "SRV", &lookup.answer);
    if lookup.records_published > lookup.records.len() {
        out.push(
            Severity::Warning,
            FindingCode::SrvRecordsCapped,
            format!(
                "{} publishes {} SRV records; the probe uses the first {} in the order clients \
                 try them.",
                lookup.name,
                lookup.records_published,
                lookup.records.len()
            ),
            "Clients try one target after another: publish one record (or a few, by priority) \
             that points at a name on your certificate."
                .into(),
        );
    }
    for record in &lookup.records {
        if srv::is_no_service(record) {
            out.push(
                Severity::Info,
                FindingCode::SrvNoService,
                format!(
                    "{} says there is no Autodiscover service (target \".\").",
                    lookup.name
                ),
                format!(
                    "Publish SRV {} 0 0 443 <host on your certificate> if Outlook should use it.",
                    lookup.name
                ),
            );
        } else if record.port != srv::HTTPS_PORT {
            out.push(
                Severity::Warning,
                FindingCode::SrvPortIgnored,
                format!(
                    "{} points at {}:{}; Outlook ignores the port and connects to {}:443.",
                    lookup.name, record.target, record.port, record.target
                ),
                format!(
                    "Serve Autodiscover on {}:443 and set the record's port to 443.",
                    record.target
                ),
            );
        }
    }
}

fn explain_verdict(out: &mut Findings, report: &ProbeReport) {
    let domain = &report.domain;
    match (&report.endpoint, report.outcome) {
        (None, _) => {
            out.push(
                Severity::Error,
                FindingCode::NoAutodiscover,
                format!(
                    "No step finds an Autodiscover service for {}: Outlook cannot set up new \
                     profiles by itself.",
                    report.address
                ),
                format!(
                    "Publish autodiscover.{domain} at your Exchange server with a certificate that \
                     lists autodiscover.{domain}, or an SRV record _autodiscover._tcp.{domain} 0 0 \
                     443 <name on the certificate>."
                ),
            );
        }
        (Some(endpoint), _) if report.redirect_prompt => {
            let host = url_host(&endpoint.url).unwrap_or_default();
            out.push(
                Severity::Info,
                FindingCode::RedirectPrompt,
                format!(
                    "Outlook finds its server through the {} step ({}) and asks each user to \
                     allow the redirect to {host}.",
                    endpoint.step, endpoint.url
                ),
                format!(
                    "Expected with a shared certificate for many domains. To avoid the question, \
                     publish autodiscover.{domain} at a server whose certificate lists it."
                ),
            );
        }
        _ => {}
    }
    for step in &report.steps {
        if let Some(HopOrigin::SrvTarget { record }) = step.hops.first().map(|h| &h.origin)
            && step.status == StepStatus::DnsNoRecord
        {
            out.push(
                Severity::Warning,
                FindingCode::SrvTargetMissing,
                format!(
                    "The SRV record points at {}, which does not resolve.",
                    record.target
                ),
                "Point the SRV record at an existing host name (a name on your certificate)."
                    .into(),
            );
        }
    }
}

fn explain_expectations(out: &mut Findings, report: &ProbeReport, expect: &Expectations) {
    let actual_host = report.endpoint.as_ref().and_then(|e| url_host(&e.url));
    if let Some(host) = &expect.endpoint_host
        && actual_host.as_deref() != Some(host.to_ascii_lowercase().as_str())
    {
        out.push(
            Severity::Error,
            FindingCode::UnexpectedEndpointHost,
            format!(
                "The endpoint is expected at {host}, but Outlook finds {}.",
                actual_host.as_deref().unwrap_or("none")
            ),
            "Check the DNS records of the domain against the expected design, or update \
             `expect.endpoint_host`."
                .into(),
        );
    }
    let actual_step = report.endpoint.as_ref().map(|e| e.step);
    if let Some(step) = expect.endpoint_step
        && actual_step != Some(step)
    {
        out.push(
            Severity::Error,
            FindingCode::UnexpectedEndpointStep,
            format!(
                "The endpoint is expected through {step}, but Outlook finds it through {}.",
                actual_step.map_or("no step", StepId::as_str)
            ),
            "Check the DNS records of the domain against the expected design, or update \
             `expect.endpoint_step`."
                .into(),
        );
    }
}
