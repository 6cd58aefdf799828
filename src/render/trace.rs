//! The step-by-step text trace of a probe (what `check` prints and `/probe?debug=true` returns).
//! Every text that came from outside (names, certificates, headers, answers, errors) goes
//! through `clean`, so a hostile server cannot send escape sequences to the reader's terminal.

use crate::model::facts::{
    AddressAttempt, BodyKind, CertificateSource, ConnectResult, HopOrigin, HostLookup,
    HttpExchange, HttpFailure, Microsoft365Answer, Microsoft365Json, QuerySource, RedirectRefusal,
    StepTrace, TlsFacts, TlsHandshake, Validity,
};
use crate::model::finding::{Severity, date};
use crate::model::pox::PoxResponse;
use crate::model::report::{ProbeReport, RedirectHop};
use crate::model::settings::{CredentialsResult, ServiceStatus, TlsMode};
use crate::model::step::{Outcome, StepStatus};
use crate::model::text::escape_controls as clean;
use std::fmt::Write;

/// Whether to colour the output with ANSI escapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// Plain text.
    Off,
    /// ANSI colours.
    On,
}

/// Renders the whole trace.
pub fn render(report: &ProbeReport, colour: Colour) -> String {
    let p = Painter(colour);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        p.bold(&format!(
            "Autodiscover for {}",
            clean(&report.address.to_string())
        ))
    );
    let _ = writeln!(out, "Resolver: {}", report.resolver);
    let _ = writeln!(
        out,
        "Verdict:  {} - {}",
        p.outcome(report.outcome),
        report.outcome.describe()
    );
    match &report.endpoint {
        Some(endpoint) => {
            let _ = writeln!(
                out,
                "Endpoint: {} via {}",
                clean(&endpoint.url),
                endpoint.step
            );
        }
        None => {
            let _ = writeln!(out, "Endpoint: none");
        }
    }
    if !report.certificate_prompts.is_empty() {
        let steps: Vec<&str> = report
            .certificate_prompts
            .iter()
            .map(|s| s.as_str())
            .collect();
        let _ = writeln!(out, "Certificate alert at: {}", steps.join(", "));
    }
    if !report.service_certificate_prompts.is_empty() {
        let services: Vec<String> = report
            .service_certificate_prompts
            .iter()
            .map(|p| format!("{} {}", p.service, p.host))
            .collect();
        let _ = writeln!(
            out,
            "Certificate alert after Autodiscover at: {}",
            services.join(", ")
        );
    }
    if report.redirect_prompt {
        let _ = writeln!(
            out,
            "Redirect prompt: Outlook asks the user to allow the redirect"
        );
    }
    if let Some(delegation) = &report.delegation {
        let ns = if delegation.nameservers.is_empty() {
            delegation.ns_answer.describe()
        } else {
            delegation.nameservers.join(", ")
        };
        let soa = match &delegation.soa {
            Some(soa) => format!("serial {} (primary {})", soa.serial, soa.primary),
            None => delegation.soa_answer.describe(),
        };
        let _ = writeln!(out, "Delegation: NS {}; SOA {}", clean(&ns), clean(&soa));
    }
    for (index, (address, steps)) in report.discoveries().enumerate() {
        if index > 0 {
            let _ = writeln!(
                out,
                "\n{}",
                p.bold(&format!(
                    "Discovery restarted for {} (redirectAddr)",
                    clean(&address.to_string())
                ))
            );
        }
        for step in steps {
            out.push('\n');
            render_step(&mut out, &p, step);
        }
    }
    render_after(&mut out, &p, report);
    if !report.redirects.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("Redirects"));
        for hop in &report.redirects {
            let _ = match hop {
                RedirectHop::Url { step, from, to } => {
                    writeln!(out, "  {step}: {} -> {}", clean(from), clean(to))
                }
                RedirectHop::Address { step, from, to } => {
                    writeln!(out, "  {step}: address {} -> {}", clean(from), clean(to))
                }
            };
        }
    }
    let _ = writeln!(out, "\n{}", p.bold("Findings"));
    if report.findings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for finding in &report.findings {
        let label = format!("{:<7}", finding.severity.as_str().to_uppercase());
        let _ = writeln!(
            out,
            "  {} {}: {}",
            p.severity(finding.severity, &label),
            finding.code,
            clean(&finding.message)
        );
        let _ = writeln!(out, "          fix: {}", clean(&finding.hint));
    }
    let _ = writeln!(out, "\nProbe took {:.3} s.", report.duration_seconds);
    out
}

fn render_step(out: &mut String, p: &Painter, step: &StepTrace) {
    let _ = writeln!(
        out,
        "{} {} - {}  [{}]  {}",
        p.bold(&format!("{}.", step.step.number())),
        p.bold(step.step.as_str()),
        step.step.title(),
        p.status(step.status),
        millis(step.duration_seconds)
    );
    if step.status == StepStatus::Excluded {
        let _ = writeln!(
            out,
            "   excluded by policy ({})",
            step.step.outlook_policy()
        );
        return;
    }
    if let Some(srv) = &step.srv {
        let records: Vec<String> = srv
            .records
            .iter()
            .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
            .collect();
        let more = srv.records_published.saturating_sub(srv.records.len());
        let detail = if records.is_empty() {
            srv.answer.describe()
        } else if more > 0 {
            format!("{} (and {more} more, not used)", records.join("; "))
        } else {
            records.join("; ")
        };
        let _ = writeln!(
            out,
            "   SRV {}: {}  {}",
            clean(&srv.name),
            clean(&detail),
            millis(srv.duration_seconds)
        );
        if step.hops.is_empty() && !srv.records.is_empty() {
            let _ = writeln!(
                out,
                "   no record a client would use (needs a real target on port 443)"
            );
        }
    }
    if let Some(query) = &step.microsoft365 {
        let answer = match &query.answer {
            Some(Microsoft365Answer::Known { url }) => format!("knows the mailbox: {url}"),
            Some(Microsoft365Answer::Unknown { status }) => {
                format!("does not know the mailbox ({status}): the classic steps decide")
            }
            None => "no answer".to_owned(),
        };
        let source = match query.source {
            QuerySource::Queried => "asked now".to_owned(),
            QuerySource::Cached => format!("cached answer, {} s old", query.age_seconds),
            QuerySource::Throttled => format!(
                "service throttling: last known answer reused ({} s old)",
                query.age_seconds
            ),
            QuerySource::RateLimited => format!(
                "no query slot in time (rate limit): last known answer reused ({} s old)",
                query.age_seconds
            ),
            QuerySource::Failed if query.answer.is_some() => format!(
                "service unreachable: last known answer reused ({} s old)",
                query.age_seconds
            ),
            QuerySource::Failed => "service unreachable".to_owned(),
        };
        let _ = writeln!(out, "   Microsoft 365 {}  [{source}]", clean(&answer));
    }
    for hop in &step.hops {
        let method = hop
            .addresses
            .iter()
            .find_map(|a| a.http.as_ref().map(|h| h.method.as_str()))
            .unwrap_or("");
        let origin = match &hop.origin {
            HopOrigin::Start => String::new(),
            HopOrigin::Microsoft365 => "  (Url named by Microsoft 365)".into(),
            HopOrigin::HttpRedirect { status } => format!("  (HTTP {status} redirect)"),
            HopOrigin::PoxRedirectUrl => "  (redirectUrl)".into(),
            HopOrigin::SrvTarget { record } => {
                format!(
                    "  (SRV {} {} {} {})",
                    record.priority, record.weight, record.port, record.target
                )
            }
        };
        let _ = writeln!(
            out,
            "   {method:<4} {}",
            clean(&format!("{}{origin}", hop.url))
        );
        if let Some(lookup) = &hop.lookup {
            render_lookup(out, lookup);
        }
        for attempt in &hop.addresses {
            render_attempt(out, p, attempt);
        }
        for refused in &hop.refused_addresses {
            let _ = writeln!(
                out,
                "   - {}  not tried: {}",
                refused.address,
                refused.reason.describe()
            );
        }
        match &hop.redirect_refused {
            Some(reason @ RedirectRefusal::ForbiddenAddress(_)) => {
                let _ = writeln!(out, "   refused: {}", clean(&reason.to_string()));
            }
            Some(reason) => {
                let _ = writeln!(out, "   redirect refused: {}", clean(&reason.to_string()));
            }
            None => {}
        }
    }
}

/// Credentials, settings and the service endpoints they name.
fn render_after(out: &mut String, p: &Painter, report: &ProbeReport) {
    if let Some(used) = &report.credentials {
        let _ = writeln!(out, "\n{}", p.bold("Credentials"));
        match &used.result {
            CredentialsResult::Sent { address, exchange } => {
                let _ = writeln!(
                    out,
                    "   POST {} to {address} with Basic authentication (credentials not shown)",
                    clean(&used.url)
                );
                let _ = writeln!(out, "       HTTP {}", clean(&describe_exchange(exchange)));
            }
            CredentialsResult::NotSent { reason } => {
                let _ = writeln!(
                    out,
                    "   not sent to {}: {}",
                    clean(&used.url),
                    clean(reason)
                );
            }
        }
    }
    let Some(settings) = &report.settings else {
        return;
    };
    let from = report
        .settings_source
        .as_ref()
        .map_or_else(String::new, |s| {
            format!(
                " from {}{}",
                clean(&s.url),
                if s.authenticated {
                    " (authenticated)"
                } else {
                    " (no authentication)"
                }
            )
        });
    let _ = writeln!(out, "\n{}", p.bold(&format!("Settings{from}")));
    if let Some(address) = &settings.autodiscover_smtp_address {
        let _ = writeln!(out, "   mailbox {}", clean(address));
    }
    for section in &settings.protocols {
        let mut parts = Vec::new();
        if let Some(server) = &section.server {
            parts.push(format!("Server {server}"));
        }
        if let Some(port) = section.port {
            parts.push(format!("Port {port}"));
        }
        if let Some(ssl) = section.ssl {
            parts.push(format!("SSL {}", if ssl { "on" } else { "off" }));
        }
        if let Some(encryption) = &section.encryption {
            parts.push(format!("Encryption {encryption}"));
        }
        let _ = writeln!(
            out,
            "   {:<9} {}",
            clean(&section.kind),
            clean(&parts.join(", "))
        );
        for named in &section.urls {
            let _ = writeln!(
                out,
                "             {} {}",
                clean(&named.element),
                clean(&named.url)
            );
        }
    }
    if report.services.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", p.bold("Services Outlook connects to next"));
    for check in &report.services {
        let target = &check.target;
        let place = target
            .url
            .clone()
            .unwrap_or_else(|| format!("{}:{}", target.host, target.port));
        let _ = writeln!(
            out,
            "\n{} {} {}  [{}]  {}",
            p.bold(target.service.as_str()),
            clean(&target.protocol),
            clean(&place),
            p.service_status(check.status),
            millis(check.duration_seconds)
        );
        let _ = writeln!(
            out,
            "   named by {}{}",
            clean(&target.named_by.join(", ")),
            if target.external {
                ""
            } else {
                " (internal URL)"
            }
        );
        if let Some(lookup) = &check.lookup {
            render_lookup(out, lookup);
        }
        for attempt in &check.addresses {
            let connect = match &attempt.connect {
                ConnectResult::Connected => {
                    format!("TCP connected {}", millis(attempt.connect_seconds))
                }
                ConnectResult::Refused => "TCP refused".to_owned(),
                ConnectResult::Timeout => {
                    format!("TCP no answer after {}", millis(attempt.connect_seconds))
                }
                ConnectResult::Failed { detail } => format!("TCP failed: {}", clean(detail)),
                ConnectResult::LocalError { detail } => {
                    format!("not tried (local): {}", clean(detail))
                }
            };
            let _ = writeln!(out, "   - {}  {connect}", attempt.address);
            let (before, after): (Vec<_>, Vec<_>) = if target.tls == TlsMode::Starttls {
                let split = attempt
                    .dialogue
                    .iter()
                    .position(|l| l.from == 'C' && is_starttls_command(&l.text))
                    .map_or(attempt.dialogue.len(), |i| {
                        (i + 2).min(attempt.dialogue.len())
                    });
                (
                    attempt.dialogue[..split].iter().collect(),
                    attempt.dialogue[split..].iter().collect(),
                )
            } else if attempt.tls.is_some() {
                (Vec::new(), attempt.dialogue.iter().collect())
            } else {
                (attempt.dialogue.iter().collect(), Vec::new())
            };
            for line in before {
                let _ = writeln!(out, "       {}: {}", line.from, clean(&line.text));
            }
            if let Some(tls) = &attempt.tls {
                render_tls(out, p, tls);
            }
            for line in after {
                let _ = writeln!(out, "       {}: {}", line.from, clean(&line.text));
            }
            if let Some(offered) = attempt.starttls_offered
                && target.tls == TlsMode::Starttls
                && !offered
            {
                let _ = writeln!(out, "       STARTTLS not advertised");
            }
            if let Some(http) = &attempt.http {
                let _ = writeln!(out, "       HTTP {}", clean(&describe_exchange(http)));
            }
            let detail = attempt
                .detail
                .as_ref()
                .map(|d| format!(" ({})", clean(d)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "       => {}{detail}",
                p.service_status(attempt.status)
            );
        }
    }
}

fn is_starttls_command(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.ends_with("STARTTLS") || upper == "STLS"
}

fn render_lookup(out: &mut String, lookup: &HostLookup) {
    let mut chain: Vec<String> = lookup
        .cname_chain
        .iter()
        .map(|hop| format!("CNAME {} (ttl {})", hop.target, hop.ttl))
        .collect();
    let answer = if lookup.addresses.is_empty() {
        format!("A {}; AAAA {}", lookup.a.describe(), lookup.aaaa.describe())
    } else {
        let addresses: Vec<String> = lookup.addresses.iter().map(ToString::to_string).collect();
        let more = lookup
            .addresses_published
            .saturating_sub(lookup.addresses.len());
        if more > 0 {
            format!("{} (and {more} more, not tried)", addresses.join(", "))
        } else {
            addresses.join(", ")
        }
    };
    chain.push(answer);
    let shared = if lookup.shared {
        "  (shared: resolved seconds ago for another domain)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "   DNS {}: {}  {}{shared}",
        clean(&lookup.host),
        clean(&chain.join(" -> ")),
        millis(lookup.duration_seconds)
    );
}

fn render_attempt(out: &mut String, p: &Painter, attempt: &AddressAttempt) {
    let connect = match &attempt.connect {
        ConnectResult::Connected => format!("TCP connected {}", millis(attempt.connect_seconds)),
        ConnectResult::Refused => "TCP refused".to_owned(),
        ConnectResult::Timeout => {
            format!("TCP no answer after {}", millis(attempt.connect_seconds))
        }
        ConnectResult::Failed { detail } => format!("TCP failed: {}", clean(detail)),
        ConnectResult::LocalError { detail } => {
            format!("TCP not tried, local failure: {}", clean(detail))
        }
    };
    let shared = if attempt.shared {
        "  (shared: observed seconds ago for another domain asking the same)"
    } else if attempt.connection_reused {
        "  (connection kept open from a request seconds ago: TLS as observed then)"
    } else {
        ""
    };
    let _ = writeln!(out, "   - {}  {connect}{shared}", attempt.address);
    if let Some(tls) = &attempt.tls {
        render_tls(out, p, tls);
    }
    if let Some(http) = &attempt.http {
        let _ = writeln!(out, "       HTTP {}", clean(&describe_exchange(http)));
    }
    if let Some(fingerprint) = &attempt.fingerprint {
        let _ = writeln!(
            out,
            "       HTTP {}",
            clean(&describe_exchange(fingerprint))
        );
    }
    let _ = writeln!(out, "       => {}", p.status(attempt.status));
}

fn render_tls(out: &mut String, p: &Painter, tls: &TlsFacts) {
    if tls.established() {
        let _ = writeln!(
            out,
            "       TLS {} {}  {}",
            tls.version.as_deref().unwrap_or("?"),
            tls.cipher.as_deref().unwrap_or(""),
            millis(tls.duration_seconds)
        );
    } else {
        let reason = match &tls.handshake {
            TlsHandshake::TimedOut => "no handshake in time",
            TlsHandshake::Failed { error } => error.as_str(),
            TlsHandshake::Established => "",
        };
        let _ = writeln!(
            out,
            "       TLS failed: {}  {}",
            clean(reason),
            millis(tls.duration_seconds)
        );
    }
    if let Some(leaf) = tls.leaf() {
        let _ = writeln!(
            out,
            "       certificate {}  issued by {}",
            clean(&leaf.subject),
            clean(&leaf.issuer)
        );
        let names = if leaf.dns_names.is_empty() {
            "(none)".to_owned()
        } else {
            leaf.dns_names.join(", ")
        };
        let _ = writeln!(out, "         names: {}", clean(&names));
        match &leaf.parse_error {
            Some(error) => {
                let _ = writeln!(
                    out,
                    "         cannot be parsed ({}): its dates are unknown, so no expiry \
                     is exported for it; sha256 {}",
                    clean(error),
                    leaf.fingerprint_sha256
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "         valid {} to {} ({} days left), serial {}, sha256 {}",
                    date(leaf.not_before),
                    date(leaf.not_after),
                    leaf.days_to_expiry.floor(),
                    leaf.serial,
                    leaf.fingerprint_sha256
                );
            }
        }
        for issuer in tls.chain.iter().skip(1) {
            let from = match &issuer.source {
                CertificateSource::Presented => "sent by the server".to_owned(),
                CertificateSource::Aia { url } => format!("fetched from AIA {url}"),
            };
            let _ = writeln!(
                out,
                "         chain: {}",
                clean(&format!("{}  ({from})", issuer.subject))
            );
        }
        if let Some(verdict) = &tls.verdict {
            let check = |ok: bool| if ok { p.good("ok") } else { p.bad("FAIL") };
            let dates = match verdict.validity {
                Validity::Valid => p.good("ok"),
                Validity::Expired => p.bad("EXPIRED"),
                Validity::NotYetValid => p.bad("NOT YET VALID"),
            };
            let trust_note = verdict
                .trust_error
                .as_ref()
                .map(|e| format!(" ({})", clean(e)))
                .unwrap_or_default();
            let aia_note = if verdict.completed_by_aia {
                " (chain completed from AIA, as Windows does)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "         name {} | trust {}{trust_note}{aia_note} | dates {}",
                check(verdict.name_matches),
                check(verdict.trusted),
                dates
            );
        }
    }
}

fn describe_exchange(http: &HttpExchange) -> String {
    let mut text = format!("{} ->", http.method.as_str());
    match http.status {
        Some(status) => {
            let _ = write!(text, " {status}");
        }
        None => text.push_str(" no response"),
    }
    if let Some(location) = &http.location {
        let _ = write!(text, " Location: {location}");
    }
    let schemes = http.auth_schemes();
    if !schemes.is_empty() {
        let _ = write!(text, " WWW-Authenticate: {}", schemes.join(", "));
    }
    for (name, value) in &http.exchange_headers {
        let _ = write!(text, " {name}: {value}");
    }
    let body = match &http.body {
        BodyKind::Empty => String::new(),
        BodyKind::Html => format!(" HTML page ({} bytes)", http.body_bytes),
        BodyKind::TooLarge => format!(" body over {} bytes, reading stopped", http.body_bytes),
        BodyKind::Other { .. } => format!(" {} bytes, not Autodiscover", http.body_bytes),
        BodyKind::Microsoft365 { answer } => match answer {
            Microsoft365Json::Endpoint { url } => format!(" JSON Url {url}"),
            Microsoft365Json::Error { code, message } => format!(" JSON error {code} {message}"),
            Microsoft365Json::Other { detail } => format!(" JSON ({detail})"),
        },
        BodyKind::Autodiscover { response } => match response {
            PoxResponse::Settings { settings } => {
                let kinds: Vec<&str> = settings.protocols.iter().map(|p| p.kind.as_str()).collect();
                format!(" Autodiscover settings ({})", kinds.join(", "))
            }
            PoxResponse::RedirectAddr { address } => {
                format!(" Autodiscover redirectAddr {address}")
            }
            PoxResponse::RedirectUrl { url } => format!(" Autodiscover redirectUrl {url}"),
            PoxResponse::Error { code, message } => format!(" Autodiscover error {code} {message}"),
        },
    };
    text.push_str(&body);
    match &http.failure {
        Some(HttpFailure::Timeout) => text.push_str(" (timed out)"),
        Some(HttpFailure::Protocol { detail }) => {
            let _ = write!(text, " ({detail})");
        }
        None => {}
    }
    let _ = write!(text, "  {}", millis(http.duration_seconds));
    text
}

fn millis(seconds: f64) -> String {
    format!("{:.0} ms", seconds * 1000.0)
}

struct Painter(Colour);

impl Painter {
    fn paint(&self, code: &str, text: &str) -> String {
        match self.0 {
            Colour::On => format!("\x1b[{code}m{text}\x1b[0m"),
            Colour::Off => text.to_owned(),
        }
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }

    fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }

    fn outcome(&self, outcome: Outcome) -> String {
        let code = match outcome {
            Outcome::Ok => "1;32",
            Outcome::RedirectPrompt => "1;33",
            _ => "1;31",
        };
        self.paint(code, &outcome.as_str().to_uppercase())
    }

    fn status(&self, status: StepStatus) -> String {
        let code = match status {
            StepStatus::EndpointFound => "32",
            StepStatus::Excluded | StepStatus::DnsNoRecord => "2",
            s if s.is_certificate_prompt() => "31",
            _ => "33",
        };
        self.paint(code, status.as_str())
    }

    fn service_status(&self, status: ServiceStatus) -> String {
        let code = match status {
            ServiceStatus::Ok => "32",
            s if s.is_certificate_prompt() => "31",
            _ => "33",
        };
        self.paint(code, status.as_str())
    }

    fn severity(&self, severity: Severity, text: &str) -> String {
        let code = match severity {
            Severity::Error => "31",
            Severity::Warning => "33",
            Severity::Info => "36",
        };
        self.paint(code, text)
    }
}
