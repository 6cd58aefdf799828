//! Findings: what is wrong (or worth knowing) and how to fix it, in an Exchange admin's terms.

mod microsoft365;

use crate::model::facts::{
    AddressAttempt, BodyKind, CertificateSource, DnsAnswer, Hop, HopOrigin, StepTrace, Validity,
    url_host,
};
use crate::model::finding::{EXPIRY_WARNING_DAYS, Finding, FindingCode, Severity, date};
use crate::model::pox::PoxResponse;
use crate::model::report::ProbeReport;
use crate::model::step::{Outcome, StepId, StepStatus};
use crate::protocol::srv;
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
        out.push(
            Severity::Error,
            FindingCode::ResolverUnreachable,
            "No DNS server answered any question of this probe, so nothing could be checked."
                .into(),
            "Check `resolver.nameservers` (or /etc/resolv.conf) and that the exporter can reach \
             them on port 53."
                .into(),
        );
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
    explain_verdict(&mut out, report);
    explain_expectations(&mut out, report, expect);
    out.finish()
}

#[derive(Default)]
struct Findings {
    /// Failed DNS questions by answer: one finding per kind of failure, naming every question.
    dns_failures: Vec<(String, Vec<String>)>,
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
        if let Some(reason) = &hop.redirect_refused {
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
                match &verdict.validity_error {
                    Some(chain) => format!("{where_}: {chain}.{note}"),
                    None => format!(
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
            Validity::Valid if leaf.days_to_expiry <= EXPIRY_WARNING_DAYS => out.push(
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
            ),
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
    let name = target.trim_end_matches('.').to_ascii_lowercase();
    let microsoft = ["outlook.com", "office365.com", "office.com"]
        .iter()
        .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")));
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
