//! Findings: what is wrong (or worth knowing) and how to fix it, in an Exchange admin's terms.

mod microsoft365;

use crate::model::address::name_within;
use crate::model::facts::{
    AddressAttempt, BodyKind, CertificateSource, DnsAnswer, Hop, HopOrigin, RedirectRefusal,
    StepTrace, Validity, url_host,
};
use crate::model::finding::{EXPIRY_WARNING_DAYS, Finding, FindingCode, Severity, date};
use crate::model::pox::PoxResponse;
use crate::model::report::ProbeReport;
use crate::model::settings::{CredentialsResult, ServiceCheck, ServiceKind, ServiceStatus};
use crate::model::step::{Outcome, StepId, StepStatus};
use crate::protocol::settings::internal_reason;
use crate::protocol::{destination, srv, verdict};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub mod changes;

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
        let local = verdict::local_failure(steps())
            .or_else(|| verdict::service_local_failure(&report.services));
        if let Some(failure) = local {
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
    explain_domain_missing(&mut out, report);
    microsoft365::explain(&mut out, report);
    explain_credentials(&mut out, report);
    for check in &report.services {
        explain_service(&mut out, check);
    }
    explain_verdict(&mut out, report);
    explain_expectations(&mut out, report, expect);
    out.finish()
}

#[derive(Default)]
struct Findings {
    /// Failed DNS questions by answer: one finding per kind of failure, naming every question.
    dns_failures: Vec<(String, Vec<String>)>,
    /// A report gives a handful of findings: a scan finds a repeated one sooner than a hash.
    list: Vec<Finding>,
}

impl Findings {
    fn push(&mut self, severity: Severity, code: FindingCode, message: String, hint: String) {
        if !self
            .list
            .iter()
            .any(|known| known.code == code && known.message == message)
        {
            self.list.push(Finding {
                severity,
                code,
                message,
                hint,
            });
        }
    }

    /// Notes a failed DNS question (server failure, refusal, timeout, malformed answer).
    fn dns_failure(&mut self, name: &str, kind: &str, answer: &DnsAnswer) {
        if !matches!(
            answer,
            DnsAnswer::ServFail | DnsAnswer::Refused | DnsAnswer::Timeout | DnsAnswer::Error { .. }
        ) {
            return;
        }
        let what = answer.describe();
        let question = format!("{name} {kind}");
        match self.dns_failures.iter_mut().find(|(w, _)| *w == what) {
            Some((_, questions)) => {
                if !questions.contains(&question) {
                    questions.push(question);
                }
            }
            None => self.dns_failures.push((what, vec![question])),
        }
    }

    fn finish(mut self) -> Vec<Finding> {
        for (what, questions) in std::mem::take(&mut self.dns_failures) {
            self.push(
                Severity::Warning,
                FindingCode::DnsFailure,
                format!("DNS lookups failed ({what}): {}.", questions.join(", ")),
                "Check the zone at the DNS provider (delegation, DNSSEC, server health): clients \
                 treat a failed lookup as a missing record and move on."
                    .into(),
            );
        }
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
                out.dns_failure(&lookup.host, kind, answer);
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
    let host = hop.host();
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
                match microsoft_target(hop) {
                    Some(target) => format!(
                        "{host} is a CNAME to {target}, a Microsoft host whose certificate can \
                         never list your domain. Outlook 2016 and later asks Microsoft 365 first and \
                         does not come here; clients that do (Outlook 2013, iOS and macOS Mail) see \
                         this alert. Keep the CNAME if Microsoft 365 asks for it, and check that no \
                         such client is in use, or answer https://{host} yourself with a \
                         certificate that lists it."
                    ),
                    None => name_mismatch_hint(domain, step, &host, leaf.dns_names.first()),
                },
            );
        }
        if verdict.completed_by_aia {
            let url = tls
                .chain
                .iter()
                .find_map(|c| match &c.source {
                    CertificateSource::Aia { url } => Some(url.as_str()),
                    CertificateSource::Presented => None,
                })
                .unwrap_or("its AIA URL");
            out.push(
                Severity::Warning,
                FindingCode::CertificateChainIncomplete,
                format!(
                    "{where_} sends only part of its certificate chain; the missing issuer comes from {url}. Outlook on Windows fetches it and shows no alert, but Android, iOS and macOS Mail, Thunderbird, many Linux clients and most libraries (Java, Python, Go) fail on this server."
                ),
                format!(
                    "Install the intermediate certificate(s) on the server behind {host} so it sends the full chain (in IIS: import the intermediate into the \"Intermediate Certification Authorities\" store and rebind)."
                ),
            );
        }
        if !verdict.trusted {
            let leaf_only = tls.chain.len() == 1 && !leaf.self_signed;
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
                if leaf_only {
                    format!(
                        "The server behind {host} sends only its leaf, and the leaf names no \
                         AIA URL where clients could fetch the issuer: install the intermediate \
                         certificate(s) so the server sends the full chain."
                    )
                } else {
                    format!(
                        "Install a certificate for {host} from a public CA. If a private CA is \
                         intended, every Outlook client must trust its root (and the exporter \
                         needs it in tls.ca_file)."
                    )
                },
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
        if !verdict.is_valid() && exchange_behind && microsoft_target(hop).is_none() {
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

/// The Microsoft host a hop's name is a CNAME to (Exchange Online's `autodiscover.outlook.com`
/// and its relatives), if it is one.
fn microsoft_target(hop: &Hop) -> Option<&str> {
    let target = hop.lookup.as_ref()?.cname_chain.last()?.target.as_str();
    let microsoft = ["outlook.com", "office365.com", "office.com"]
        .iter()
        .any(|domain| name_within(target, domain));
    microsoft.then_some(target)
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

fn explain_srv(out: &mut Findings, report: &ProbeReport) {
    let Some(step) = report.step(StepId::SrvRecord) else {
        return;
    };
    let Some(lookup) = &step.srv else { return };
    out.dns_failure(&lookup.name, "SRV", &lookup.answer);
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
                    "{} points at {}:{}; Outlook builds https://{}/Autodiscover/Autodiscover.xml \
                     (port 443) and uses only records on port 443, so it ignores this one.",
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

/// NXDOMAIN for the mail domain itself: the name does not exist for this resolver (an existing
/// domain without an address answers "no data" instead).
fn domain_missing(report: &ProbeReport) -> bool {
    report
        .step(StepId::RootDomain)
        .and_then(|s| s.hops.first())
        .and_then(|h| h.lookup.as_ref())
        .is_some_and(|l| l.a == DnsAnswer::NxDomain && l.aaaa == DnsAnswer::NxDomain)
}

fn explain_domain_missing(out: &mut Findings, report: &ProbeReport) {
    if domain_missing(report) {
        out.push(
            Severity::Error,
            FindingCode::DomainNotFound,
            format!(
                "{} does not exist in DNS (NXDOMAIN from {}).",
                report.domain, report.resolver
            ),
            "Check the spelling of the domain in the configuration, the registration of the \
             domain, and that the resolver sees the public zone (split DNS)."
                .into(),
        );
    }
}

fn explain_verdict(out: &mut Findings, report: &ProbeReport) {
    let domain = &report.domain;
    match (&report.endpoint, report.outcome) {
        (None, _) => {
            let hint = if !report.certificate_prompts.is_empty() {
                let steps: Vec<&str> = report
                    .certificate_prompts
                    .iter()
                    .map(|s| s.as_str())
                    .collect();
                format!(
                    "Outlook reaches a server at {} but its certificate fails; fix that \
                     certificate (see the certificate findings) and the endpoint is found there.",
                    steps.join(", ")
                )
            } else if domain_missing(report) {
                format!(
                    "{domain} does not exist in DNS: check the spelling of the domain in the \
                     configuration, and that the resolver ({}) sees the public zone.",
                    report.resolver
                )
            } else {
                format!(
                    "Publish autodiscover.{domain} at your Exchange server with a certificate \
                     that lists autodiscover.{domain}, or an SRV record _autodiscover._tcp.{domain} \
                     0 0 443 <name on the certificate>."
                )
            };
            out.push(
                Severity::Error,
                FindingCode::NoAutodiscover,
                format!(
                    "No step finds an Autodiscover service for {}: Outlook cannot set up new \
                     profiles by itself.",
                    report.address
                ),
                hint,
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

fn explain_credentials(out: &mut Findings, report: &ProbeReport) {
    let Some(used) = &report.credentials else {
        return;
    };
    match &used.result {
        CredentialsResult::Sent { exchange, .. } if exchange.status == Some(401) => {
            let schemes = exchange.auth_schemes();
            let note = if !schemes.is_empty()
                && !schemes.iter().any(|s| s.eq_ignore_ascii_case("basic"))
            {
                format!(
                    " The server offers only {}; the probe authenticates with Basic.",
                    schemes.join(", ")
                )
            } else {
                String::new()
            };
            out.push(
                Severity::Warning,
                FindingCode::CredentialsRejected,
                format!(
                    "{} answered 401 to the probe's credentials: the password is wrong or expired, \
                     the account is locked or disabled, or Basic authentication is off.{note} \
                     Without settings, the servers Outlook connects to next are not checked.",
                    used.url
                ),
                format!(
                    "Test the account from the credentials file (curl -u USER -X POST {}); on \
                     Exchange, allow Basic on the Autodiscover virtual directory \
                     (Set-AutodiscoverVirtualDirectory -BasicAuthentication $true) or give the \
                     probe an account that may use it.",
                    used.url
                ),
            );
        }
        CredentialsResult::NotSent { reason } if report.settings.is_none() => {
            out.push(
                Severity::Info,
                FindingCode::CredentialsNotSent,
                format!("The credentials were not sent to {}: {reason}.", used.url),
                "Credentials only go over TLS to an endpoint without a certificate alert; behind a \
                 redirect (HTTP redirect, SRV record, redirectUrl, redirectAddr, Microsoft 365), \
                 only to a host listed in the domain's credentials_hosts."
                    .into(),
            );
        }
        _ => {}
    }
}

fn explain_service(out: &mut Findings, check: &ServiceCheck) {
    let target = &check.target;
    let host = &target.host;
    let service = target.service;
    let place = match &target.url {
        Some(url) => url.clone(),
        None => format!("{host}:{} ({})", target.port, target.protocol),
    };
    let named = target.named_by.join(", ");
    let mut internal = false;
    if target.external {
        let resolved: Vec<std::net::IpAddr> = check
            .lookup
            .as_ref()
            .map(|l| l.addresses.clone())
            .unwrap_or_default();
        if let Some(reason) = internal_reason(host, &resolved) {
            internal = true;
            out.push(
                Severity::Warning,
                FindingCode::SettingsInternalName,
                format!(
                    "The settings send Outlook outside the company network to {place} ({named}), \
                     but {reason}: clients outside cannot reach it, and no public CA certifies \
                     such a name."
                ),
                format!(
                    "Announce a public name on the certificate for external use: {} and publish it \
                     in public DNS (split DNS keeps it internal inside).",
                    fix_command(service, "mail.example.com")
                ),
            );
        }
    }
    let leaf = check.addresses.iter().find_map(|a| {
        let tls = a.tls.as_ref()?;
        Some((a.address, tls.leaf()?, tls.verdict.as_ref()?))
    });
    if check.status.is_certificate_prompt() {
        let (what, name) = match leaf {
            Some((address, leaf, verdict)) => {
                let names = if leaf.dns_names.is_empty() {
                    format!("no DNS names (subject {})", leaf.subject)
                } else {
                    leaf.dns_names.join(", ")
                };
                let what = if !verdict.name_matches {
                    format!(
                        "the certificate ({}) lists {names}, not {host}",
                        address.ip()
                    )
                } else if !verdict.trusted {
                    format!(
                        "the certificate ({}) is not trusted ({})",
                        address.ip(),
                        if leaf.self_signed {
                            "self-signed".to_owned()
                        } else {
                            format!("issued by {}", leaf.issuer)
                        }
                    )
                } else if verdict.validity == Validity::Expired {
                    format!(
                        "the certificate ({}) expired on {}",
                        address.ip(),
                        date(leaf.not_after)
                    )
                } else {
                    format!(
                        "the certificate ({}) is valid only from {}",
                        address.ip(),
                        date(leaf.not_before)
                    )
                };
                (what, leaf.dns_names.first().cloned())
            }
            None => (check.status.describe().to_owned(), None),
        };
        let example = name.unwrap_or_else(|| "a name on the certificate".to_owned());
        let hint = if check.status == ServiceStatus::CertNameMismatch {
            format!(
                "Add {host} to the certificate served there, or announce a name the certificate \
                 covers: {}. {}",
                fix_command(service, &example),
                provider_note(service, host)
            )
        } else {
            format!(
                "Install a current certificate from a public CA for {host} on every server behind \
                 it ({}). {}",
                bind_command(service),
                provider_note(service, host)
            )
        };
        out.push(
            Severity::Error,
            FindingCode::ServiceCertificatePrompt,
            format!(
                "Outlook connects to the {} at {place} (named by {named} in the Autodiscover \
                 settings) and shows a certificate security alert: {what}.",
                service.title()
            ),
            hint,
        );
    } else if check.status != ServiceStatus::Ok && target.external && !internal {
        let detail = check
            .addresses
            .iter()
            .find_map(|a| a.detail.clone())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        out.push(
            Severity::Warning,
            FindingCode::ServiceUnavailable,
            format!(
                "The {} at {place} (named by {named}) cannot be used: {}{detail}.",
                service.title(),
                check.status.describe()
            ),
            match check.status {
                ServiceStatus::StarttlsFailed => format!(
                    "Enable STARTTLS on {host}:{} or announce the implicit-TLS port (IMAP 993, \
                     POP3 995, SMTP 465) in the settings.",
                    target.port
                ),
                ServiceStatus::DnsNoRecord | ServiceStatus::DnsError => {
                    format!("Publish {host} in public DNS or announce a name that resolves.")
                }
                _ => format!(
                    "Check that {host}:{} is open and served by the right service.",
                    target.port
                ),
            },
        );
    }
    if let Some((address, leaf, verdict)) = leaf
        && verdict.validity == Validity::Valid
        && leaf.parse_error.is_none()
        && leaf.days_to_expiry <= EXPIRY_WARNING_DAYS
    {
        out.push(
            Severity::Warning,
            FindingCode::CertificateExpiring,
            format!(
                "The certificate of {host}:{} ({} {}, {}) expires in {} days ({}).",
                target.port,
                service,
                target.protocol,
                address.ip(),
                leaf.days_to_expiry.floor(),
                date(leaf.not_after)
            ),
            format!(
                "Renew it before {} and bind the new one on every server behind {host} ({}).",
                date(leaf.not_after),
                bind_command(service)
            ),
        );
    }
}

/// The Exchange command that changes the name a service is announced with.
fn fix_command(service: ServiceKind, name: &str) -> String {
    match service {
        ServiceKind::Ews | ServiceKind::Oof => format!(
            "Set-WebServicesVirtualDirectory -Identity \"SERVER\\EWS (Default Web Site)\" \
             -ExternalUrl https://{name}/EWS/Exchange.asmx"
        ),
        ServiceKind::Oab => format!(
            "Set-OabVirtualDirectory -Identity \"SERVER\\OAB (Default Web Site)\" -ExternalUrl \
             https://{name}/OAB"
        ),
        ServiceKind::Ecp => format!(
            "Set-EcpVirtualDirectory -Identity \"SERVER\\ecp (Default Web Site)\" -ExternalUrl \
             https://{name}/ecp"
        ),
        ServiceKind::Mapi => format!(
            "Set-MapiVirtualDirectory -Identity \"SERVER\\mapi (Default Web Site)\" -ExternalUrl \
             https://{name}/mapi"
        ),
        ServiceKind::Rpc => format!(
            "Set-OutlookAnywhere -Identity \"SERVER\\Rpc (Default Web Site)\" -ExternalHostname \
             {name}"
        ),
        ServiceKind::Imap => {
            format!("Set-ImapSettings -ExternalConnectionSettings \"{name}:993:SSL\"")
        }
        ServiceKind::Pop3 => {
            format!("Set-PopSettings -ExternalConnectionSettings \"{name}:995:SSL\"")
        }
        ServiceKind::Smtp => format!(
            "Set-ReceiveConnector \"SERVER\\Client Frontend SERVER\" -Fqdn {name} (and the SMTP \
             server name in the Autodiscover settings)"
        ),
    }
}

/// The Exchange command that binds a certificate to the service.
fn bind_command(service: ServiceKind) -> &'static str {
    match service {
        ServiceKind::Imap => "Enable-ExchangeCertificate -Thumbprint THUMBPRINT -Services IMAP",
        ServiceKind::Pop3 => "Enable-ExchangeCertificate -Thumbprint THUMBPRINT -Services POP",
        ServiceKind::Smtp => "Enable-ExchangeCertificate -Thumbprint THUMBPRINT -Services SMTP",
        _ => "Enable-ExchangeCertificate -Thumbprint THUMBPRINT -Services IIS",
    }
}

fn provider_note(service: ServiceKind, host: &str) -> String {
    if service.is_https() {
        format!("If {host} is run by a hosting provider, the certificate is theirs to fix.")
    } else {
        format!(
            "If a hosting provider runs {host}, ask them for a certificate that covers it, or \
             announce the server name their certificate lists."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::facts::{
        CertificateFacts, CertificateSource, CertificateVerdict, ConnectResult, TlsFacts,
        TlsHandshake,
    };
    use crate::model::settings::{ServiceAttempt, ServiceTarget, TlsMode, protocol_label};

    fn leaf(names: &[&str], days: f64) -> CertificateFacts {
        CertificateFacts {
            subject: format!("CN={}", names[0]),
            issuer: "CN=Some CA".into(),
            dns_names: names.iter().map(|n| (*n).to_owned()).collect(),
            ip_addresses: vec![],
            serial: "01".into(),
            fingerprint_sha256: "ab".repeat(32),
            not_before: 1_700_000_000,
            not_after: 1_800_000_000,
            days_to_expiry: days,
            self_signed: false,
            ca_issuers: vec![],
            source: CertificateSource::Presented,
            parse_error: None,
        }
    }

    fn check(
        service: ServiceKind,
        host: &str,
        port: u16,
        tls: TlsMode,
        leaf: CertificateFacts,
        verdict: CertificateVerdict,
        status: ServiceStatus,
    ) -> ServiceCheck {
        let url = service
            .is_https()
            .then(|| format!("https://{host}/EWS/Exchange.asmx"));
        ServiceCheck {
            target: ServiceTarget {
                service,
                protocol: protocol_label(service, tls).into(),
                host: host.into(),
                port,
                url,
                tls,
                named_by: vec![format!("{} Server", service.as_str().to_uppercase())],
                external: true,
            },
            lookup: None,
            addresses: vec![ServiceAttempt {
                address: "203.0.113.9:443".parse().unwrap(),
                connect: ConnectResult::Connected,
                connect_seconds: 0.0,
                dialogue: vec![],
                starttls_offered: None,
                tls: Some(TlsFacts {
                    handshake: TlsHandshake::Established,
                    version: None,
                    cipher: None,
                    chain: vec![leaf],
                    verdict: Some(verdict),
                    duration_seconds: 0.0,
                }),
                http: None,
                status,
                detail: None,
                duration_seconds: 0.0,
            }],
            status,
            duration_seconds: 0.0,
        }
    }

    fn verdict(name: bool, trusted: bool, validity: Validity) -> CertificateVerdict {
        CertificateVerdict {
            name_matches: name,
            trusted,
            validity,
            trust_error: None,
            validity_error: None,
            completed_by_aia: false,
        }
    }

    fn findings(check: &ServiceCheck) -> Vec<Finding> {
        let mut out = Findings::default();
        explain_service(&mut out, check);
        out.finish()
    }

    #[test]
    fn service_certificate_findings_name_the_problem_and_the_fix() {
        let imap = findings(&check(
            ServiceKind::Imap,
            "imap.x.example",
            993,
            TlsMode::Implicit,
            leaf(&["mail.provider.example"], 200.0),
            verdict(false, true, Validity::Valid),
            ServiceStatus::CertNameMismatch,
        ));
        assert_eq!(imap[0].code, FindingCode::ServiceCertificatePrompt);
        assert!(
            imap[0].message.contains("imap.x.example:993 (imaps)"),
            "{}",
            imap[0].message
        );
        assert!(
            imap[0]
                .message
                .contains("lists mail.provider.example, not imap.x.example"),
            "{}",
            imap[0].message
        );
        assert!(
            imap[0].hint.contains(
                "Set-ImapSettings -ExternalConnectionSettings \"mail.provider.example:993:SSL\""
            ) && imap[0].hint.contains("hosting provider"),
            "{}",
            imap[0].hint
        );

        let expired = findings(&check(
            ServiceKind::Ews,
            "mail.x.example",
            443,
            TlsMode::Implicit,
            leaf(&["mail.x.example"], -3.0),
            verdict(true, true, Validity::Expired),
            ServiceStatus::CertExpired,
        ));
        assert_eq!(expired.len(), 1, "{expired:#?}");
        assert!(
            expired[0].message.contains("expired on"),
            "{}",
            expired[0].message
        );
        assert!(
            expired[0].hint.contains("-Services IIS"),
            "{}",
            expired[0].hint
        );

        let untrusted = findings(&check(
            ServiceKind::Smtp,
            "smtp.x.example",
            587,
            TlsMode::Starttls,
            leaf(&["smtp.x.example"], 200.0),
            verdict(true, false, Validity::Valid),
            ServiceStatus::CertUntrusted,
        ));
        assert!(
            untrusted[0]
                .message
                .contains("is not trusted (issued by CN=Some CA)")
        );
        assert!(untrusted[0].hint.contains("-Services SMTP"));

        let expiring = findings(&check(
            ServiceKind::Pop3,
            "pop.x.example",
            995,
            TlsMode::Implicit,
            leaf(&["pop.x.example"], 9.5),
            verdict(true, true, Validity::Valid),
            ServiceStatus::Ok,
        ));
        assert_eq!(expiring.len(), 1, "{expiring:#?}");
        assert_eq!(expiring[0].code, FindingCode::CertificateExpiring);
        assert!(
            expiring[0].message.contains("expires in 9 days"),
            "{}",
            expiring[0].message
        );
    }
}
