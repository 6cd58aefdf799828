//! The status page and the per-domain trace page: plain, escaped HTML, no scripts.

use super::trace::{self, Colour};
use crate::model::address::Domain;
use crate::model::finding::{Severity, date};
use crate::model::report::ProbeReport;
use crate::model::step::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
th{background:#f4f4f4}.v{display:inline-block;padding:.1em .5em;border-radius:.3em;color:#fff;font-weight:600}\
.ok{background:#2e7d32}.redirect_prompt{background:#b26a00}.certificate_prompt,.probe_error{background:#c62828}\
.not_found{background:#6a1b9a}.pending{background:#757575}.warn{color:#b26a00}.bad{color:#c62828}\
pre{background:#f7f7f7;padding:1em;overflow-x:auto}.muted{color:#777}code{background:#f4f4f4;padding:0 .2em}";

/// Escapes text for HTML content and attribute values; controls and bidi overrides from outside
/// are shown as escapes, not obeyed.
pub fn escape(text: &str) -> String {
    crate::protocol::pox::escape(&crate::model::text::escape_controls(text))
}

/// The `Content-Security-Policy` of every response: nothing may load or run, except the page's
/// own stylesheet (allowed by its hash; the pages have no scripts).
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        )
    })
}

/// Percent-encodes a path segment or query value.
pub fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

fn badge(outcome: Option<Outcome>) -> String {
    match outcome {
        Some(outcome) => format!(
            "<span class=\"v {}\" title=\"{}\">{}</span>",
            outcome.as_str(),
            escape(outcome.describe()),
            outcome.as_str()
        ),
        None => "<span class=\"v pending\">pending</span>".to_owned(),
    }
}

/// What the pages show of one domain.
#[derive(Clone, Copy, Debug)]
pub struct DomainView<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// Its configured labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its latest report, once probed.
    pub report: Option<&'a ProbeReport>,
}

/// The status page: every domain at a glance.
pub fn status_page(domains: &[DomainView<'_>], now: i64) -> String {
    let mut counts = [0usize; 5];
    let mut pending = 0;
    for entry in domains {
        match entry.report {
            Some(report) => counts[report.outcome as usize] += 1,
            None => pending += 1,
        }
    }
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>autodiscover-exporter</h1><p>{} domains. ",
        domains.len()
    );
    for outcome in Outcome::ALL {
        let _ = write!(
            body,
            "{} {} &nbsp; ",
            badge(Some(outcome)),
            counts[outcome as usize]
        );
    }
    if pending > 0 {
        let _ = write!(body, "{} {pending}", badge(None));
    }
    body.push_str(
        "</p><p><a href=\"/metrics\">Metrics</a> · <a href=\"/-/healthy\">Health</a> · \
         Probe a configured domain: <code>/probe?target=DOMAIN</code> (add <code>&amp;debug=true</code> for the trace)</p>\n",
    );
    body.push_str(
        "<table><thead><tr><th>Domain</th><th>Labels</th><th>Verdict</th><th>Endpoint step</th>\
         <th>Endpoint</th><th>Nearest certificate expiry</th><th>SRV</th><th>Last probe</th></tr></thead><tbody>\n",
    );
    for entry in domains {
        let domain = entry.domain.display();
        let labels: Vec<String> = entry
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        let _ = write!(
            body,
            "<tr><td><a href=\"/domains/{}\">{}</a></td><td>{}</td>",
            url_encode(domain),
            escape(domain),
            labels.join("<br>")
        );
        match entry.report {
            None => {
                let _ = writeln!(
                    body,
                    "<td>{}</td><td colspan=\"5\" class=\"muted\">not probed yet</td></tr>",
                    badge(None)
                );
            }
            Some(report) => {
                let (step, url) = match &report.endpoint {
                    Some(e) => (e.step.as_str().to_owned(), escape(&e.url)),
                    None => (
                        "none".to_owned(),
                        "<span class=\"muted\">none</span>".to_owned(),
                    ),
                };
                let srv = if report.srv.present {
                    let targets: Vec<String> = report
                        .srv
                        .records
                        .iter()
                        .map(|r| escape(&format!("{}:{}", r.target, r.port)))
                        .collect();
                    format!("yes ({})", targets.join(", "))
                } else if report.srv.records.is_empty() {
                    "no".to_owned()
                } else {
                    "<span class=\"warn\">unusable</span>".to_owned()
                };
                let _ = writeln!(
                    body,
                    "<td>{}</td><td>{step}</td><td>{url}</td><td>{}</td><td>{srv}</td><td>{}</td></tr>",
                    badge(Some(report.outcome)),
                    expiry_cell(report),
                    age(now, report.finished_at())
                );
            }
        }
    }
    body.push_str("</tbody></table>");
    page("autodiscover-exporter", &body)
}

fn expiry_cell(report: &ProbeReport) -> String {
    let nearest = report
        .steps
        .iter()
        .flat_map(|s| s.addresses())
        .filter_map(|(hop, a)| {
            let leaf = a.tls.as_ref()?.leaf()?;
            // An unparseable certificate has no known expiry.
            if leaf.parse_error.is_some() {
                return None;
            }
            Some((leaf.days_to_expiry, leaf.not_after, hop.host().to_owned()))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    match nearest {
        None => "<span class=\"muted\">no certificate</span>".to_owned(),
        Some((days, not_after, host)) => {
            let class = if days < 0.0 {
                "bad"
            } else if days < 21.0 {
                "warn"
            } else {
                ""
            };
            format!(
                "<span class=\"{class}\">{:.0} days</span> <span class=\"muted\">({}, {})</span>",
                days.floor(),
                escape(&host),
                date(not_after)
            )
        }
    }
}

fn age(now: i64, then: f64) -> String {
    let seconds = (now as f64 - then).max(0.0);
    if seconds < 120.0 {
        format!("{seconds:.0} s ago")
    } else if seconds < 7200.0 {
        format!("{:.0} min ago", seconds / 60.0)
    } else {
        format!("{:.1} h ago", seconds / 3600.0)
    }
}

/// The trace page of one domain.
pub fn domain_page(entry: &DomainView<'_>, now: i64) -> String {
    let domain = entry.domain.display();
    let mut body = format!(
        "<p><a href=\"/\">&larr; all domains</a></p><h1>{}</h1>",
        escape(domain)
    );
    let Some(report) = entry.report else {
        body.push_str("<p>Not probed yet; this page fills in after the first probe.</p>");
        return page(domain, &body);
    };
    let _ = write!(
        body,
        "<p>{} {} &middot; probed {} as <code>{}</code> &middot; <a href=\"/domains/{}?format=json\">JSON</a> \
         &middot; <a href=\"/probe?target={}&amp;debug=true\">probe now</a></p>",
        badge(Some(report.outcome)),
        escape(report.outcome.describe()),
        age(now, report.finished_at()),
        escape(&report.address.to_string()),
        url_encode(domain),
        url_encode(domain)
    );
    if !report.findings.is_empty() {
        body.push_str(
            "<h2>Findings</h2><table><tr><th>Severity</th><th>Finding</th><th>How to fix</th></tr>",
        );
        for finding in &report.findings {
            let class = match finding.severity {
                Severity::Error => "bad",
                Severity::Warning => "warn",
                Severity::Info => "muted",
            };
            let _ = write!(
                body,
                "<tr><td class=\"{class}\">{}</td><td><code>{}</code><br>{}</td><td>{}</td></tr>",
                finding.severity.as_str(),
                escape(finding.code.as_str()),
                escape(&finding.message),
                escape(&finding.hint)
            );
        }
        body.push_str("</table>");
    }
    let _ = write!(
        body,
        "<h2>Trace</h2><pre>{}</pre>",
        escape(&trace::render(report, Colour::Off))
    );
    page(domain, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
        assert_eq!(url_encode("a b&c"), "a+b%26c");
    }
}
