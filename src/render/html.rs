//! The status page and the per-domain page: plain, escaped HTML with one `<style>` block, no
//! scripts and no external assets, so a strict Content-Security-Policy
//! (`default-src 'none'; style-src 'unsafe-inline'`) serves them as they are. Filters are query
//! parameters, so they work without JavaScript and survive the auto-refresh.

use crate::model::address::Domain;
use crate::model::facts::{
    AddressAttempt, ConnectResult, DnsAnswer, Hop, HopOrigin, HttpExchange, StepTrace,
    TlsHandshake, Validity, url_host,
};
use crate::model::finding::{EXPIRY_WARNING_DAYS, Finding, Severity, date};
use crate::model::history::{Change, DomainMemory};
use crate::model::report::ProbeReport;
use crate::model::settings::{CredentialsResult, ServiceCheck, ServiceStatus};
use crate::model::step::{Outcome, StepId, StepStatus};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Escapes text for HTML content and attribute values; controls and bidi overrides from outside
/// are shown as escapes, not obeyed.
pub fn escape(text: &str) -> String {
    crate::protocol::pox::escape(&crate::model::text::escape_controls(text))
}

/// Domains per page of the status page.
pub const PAGE_SIZE: usize = 200;

/// Seconds between automatic reloads of the pages.
pub const REFRESH_SECONDS: u32 = 60;

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;padding:1em;max-width:1500px;color:#1d1d1f;background:#fafafa;line-height:1.4}\
a{color:#0b57d0}h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .5em}\
.banner{background:#fdecea;border:1px solid #c62828;color:#8e0000;padding:.6em .8em;border-radius:.3em;margin:.6em 0}\
.counts{display:flex;flex-wrap:wrap;gap:.4em;margin:.6em 0}.counts a{text-decoration:none}\
.v{display:inline-block;padding:.1em .5em;border-radius:.3em;color:#fff;font-weight:600;font-size:.9em;white-space:nowrap}\
.ok{background:#2e7d32}.redirect_prompt{background:#a15c00}.certificate_prompt,.probe_error{background:#c62828}\
.not_found{background:#6a1b9a}.pending{background:#757575}\
form.filters{display:flex;flex-wrap:wrap;gap:.5em;align-items:end;margin:.6em 0;padding:.6em;background:#fff;border:1px solid #ddd;border-radius:.3em}\
form.filters label{display:flex;flex-direction:column;font-size:.85em;color:#555}\
select,input,button{font:inherit;padding:.25em .4em;max-width:100%}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{text-align:left;padding:.4em .5em;border-bottom:1px solid #e3e3e3;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f0f0f0;font-size:.9em}\
td.name{min-width:11em}td.sev{white-space:nowrap}td.name a{overflow-wrap:normal;word-break:normal}td.cert{font-size:.92em}\
.muted{color:#6b6b6b}.warn{color:#a15c00}.bad{color:#c62828}.good{color:#2e7d32}\
.chip{display:inline-block;background:#eef;border-radius:.8em;padding:0 .5em;margin:.1em .2em .1em 0;font-size:.8em;color:#334}\
.pager{margin:.8em 0;display:flex;gap:1em;flex-wrap:wrap}\
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}\
code{background:#f0f0f0;padding:0 .2em;overflow-wrap:anywhere}\
pre{background:#fff;border:1px solid #ddd;padding:.8em;overflow-x:auto;max-width:100%;white-space:pre-wrap;overflow-wrap:anywhere}\
details{margin:.2em 0 .2em .2em}summary{cursor:pointer;padding:.15em 0}\
details details{margin-left:1.2em}\
.tree>details{background:#fff;border:1px solid #ddd;border-radius:.3em;padding:.3em .6em;margin:.4em 0}\
.facts{margin:.2em 0 .4em 1.4em;padding:0;list-style:none}.facts li{margin:.1em 0;overflow-wrap:anywhere}\
.i{display:inline-block;width:1.3em;text-align:center;font-weight:700}\
.timeline{list-style:none;padding:0;margin:0}.timeline li{padding:.3em 0;border-bottom:1px solid #eee;overflow-wrap:anywhere}\
.timeline time{color:#555;font-variant-numeric:tabular-nums;margin-right:.5em}\
.actions{display:flex;flex-wrap:wrap;gap:.6em;align-items:center}.actions form{display:inline}\
@media (max-width:760px){\
body{padding:.5em}\
table.domains thead{display:none}\
table.domains,table.domains tbody,table.domains tr,table.domains td{display:block;width:100%}\
table.domains tr{border:1px solid #ddd;border-radius:.4em;margin:.5em 0;padding:.3em .5em;background:#fff}\
table.domains td{border:0;padding:.15em 0}\
table.domains td[data-label]::before{content:attr(data-label) ': ';color:#6b6b6b;font-size:.85em}\
table.domains td.name{font-size:1.05em;font-weight:600}\
table.findings thead{display:none}\
table.findings,table.findings tbody,table.findings tr,table.findings td{display:block;width:100%}\
table.findings tr{border:1px solid #ddd;border-radius:.4em;margin:.5em 0;padding:.3em .5em;background:#fff}\
table.findings td{border:0;padding:.15em 0;overflow-wrap:break-word}\
}";

/// The Content-Security-Policy the pages are served with: nothing but their own `<style>`
/// block (by its hash), forms posting to `form_target` (`'self'`, plus the external URL's
/// origin when links point there), no scripts, no frames, no external assets.
pub fn content_security_policy(external_url: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
    let origin = url::Url::parse(external_url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'{origin}; \
         base-uri 'none'; frame-ancestors 'none'"
    )
}

/// Percent-encodes a path segment or query value.
pub fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A configuration reload that failed, for the banner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadFailure {
    /// When, Unix seconds.
    pub at: i64,
    /// Why.
    pub error: String,
}

/// What every page needs besides its data.
#[derive(Clone, Copy, Debug)]
pub struct PageContext<'a> {
    /// Now, Unix seconds.
    pub now: i64,
    /// The exporter's external URL without a trailing slash (empty: relative links).
    pub base: &'a str,
    /// The latest reload, when it failed.
    pub reload_failure: Option<&'a ReloadFailure>,
}

/// What the pages show of one domain.
#[derive(Clone, Copy, Debug)]
pub struct DomainView<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// Its configured labels.
    pub labels: &'a BTreeMap<String, String>,
    /// What the status page shows of its latest report, once probed.
    pub summary: Option<&'a ReportSummary>,
    /// What the history knows of it.
    pub memory: Option<&'a DomainMemory>,
    /// Its latest changes, oldest first.
    pub timeline: &'a [Change],
}

impl DomainView<'_> {
    fn outcome(&self) -> Option<Outcome> {
        self.summary.map(|s| s.outcome)
    }

    /// Worst first; pending domains after every verdict.
    fn rank(&self) -> usize {
        self.outcome().map_or(Outcome::ALL.len(), |o| o as usize)
    }

    fn last_change_at(&self) -> Option<i64> {
        self.memory.and_then(|m| m.last_change_at)
    }
}

/// What the status page and its JSON show of a report: kept per domain, so listing thousands
/// of domains needs no full report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSummary {
    /// The verdict.
    pub outcome: Outcome,
    /// The endpoint's step and URL.
    pub endpoint: Option<(StepId, String)>,
    /// The step and top finding in a few words.
    pub problem: Option<String>,
    /// The top finding's code.
    pub finding: Option<&'static str>,
    /// The nearest certificate expiry: days, notAfter, host.
    pub expiry: Option<(f64, i64, String)>,
    /// When the probe finished, Unix seconds.
    pub finished_at: f64,
}

impl ReportSummary {
    /// The summary of `report`.
    pub fn of(report: &ProbeReport) -> Self {
        Self {
            outcome: report.outcome,
            endpoint: report.endpoint.as_ref().map(|e| (e.step, e.url.clone())),
            problem: problem_text(report),
            finding: top_finding(report).map(|f| f.code.as_str()),
            expiry: nearest_expiry(report),
            finished_at: report.finished_at(),
        }
    }
}

/// The filters and page of the status page, from its query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusQuery {
    /// Only this verdict (`pending` for domains not probed yet).
    pub verdict: Option<String>,
    /// Only domains whose name contains this text.
    pub search: Option<String>,
    /// Only domains with these label values.
    pub labels: BTreeMap<String, String>,
    /// 1-based page.
    pub page: usize,
}

/// Query parameters that are not label filters.
const RESERVED_PARAMETERS: &[&str] = &["verdict", "q", "page", "format"];

impl StatusQuery {
    /// Reads the parameters: `verdict`, `q`, `page`, and any other name as a label filter.
    /// Empty values mean "any".
    pub fn parse(pairs: &[(String, String)]) -> Self {
        let mut query = Self {
            page: 1,
            ..Self::default()
        };
        for (name, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.as_str() {
                "verdict" => query.verdict = Some(value.to_owned()),
                "q" => query.search = Some(value.to_lowercase()),
                "page" => query.page = value.parse().unwrap_or(1).max(1),
                "format" => {}
                label => {
                    query.labels.insert(label.to_owned(), value.to_owned());
                }
            }
        }
        query
    }

    fn matches(&self, view: &DomainView<'_>) -> bool {
        if let Some(verdict) = &self.verdict {
            let actual = view.outcome().map_or("pending", Outcome::as_str);
            if actual != verdict {
                return false;
            }
        }
        if let Some(search) = &self.search
            && !view.domain.display().to_lowercase().contains(search)
            && !view.domain.ascii().contains(search)
        {
            return false;
        }
        self.labels
            .iter()
            .all(|(name, value)| view.labels.get(name) == Some(value))
    }

    /// The query string of these filters, with another page (or verdict) when given.
    fn to_query(&self, page: usize, verdict: Option<Option<&str>>) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let verdict = match verdict {
            Some(v) => v.map(str::to_owned),
            None => self.verdict.clone(),
        };
        if let Some(v) = verdict {
            pairs.push(("verdict".into(), v));
        }
        if let Some(q) = &self.search {
            pairs.push(("q".into(), q.clone()));
        }
        for (name, value) in &self.labels {
            pairs.push((name.clone(), value.clone()));
        }
        if page > 1 {
            pairs.push(("page".into(), page.to_string()));
        }
        if pairs.is_empty() {
            return String::new();
        }
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &pairs {
            serializer.append_pair(name, value);
        }
        format!("?{}", serializer.finish())
    }
}

/// Domains matching the query, worst first, then by name.
pub fn select<'a>(domains: &[DomainView<'a>], query: &StatusQuery) -> Vec<DomainView<'a>> {
    let mut selected: Vec<DomainView<'a>> = domains
        .iter()
        .filter(|d| query.matches(d))
        .copied()
        .collect();
    selected.sort_by(|a, b| {
        a.rank()
            .cmp(&b.rank())
            .then_with(|| a.domain.display().cmp(b.domain.display()))
    });
    selected
}

/// One row of `/?format=json`.
#[derive(Debug, Serialize)]
pub struct DomainSummary<'a> {
    /// The domain as configured.
    pub domain: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The verdict (`pending` before the first probe).
    pub outcome: &'static str,
    /// The endpoint step, if any.
    pub endpoint_step: Option<&'static str>,
    /// The endpoint URL, if any.
    pub endpoint_url: Option<&'a str>,
    /// The step and top finding in a few words.
    pub problem: Option<String>,
    /// The top finding's code.
    pub finding: Option<&'static str>,
    /// Days until the nearest certificate expiry.
    pub certificate_days_to_expiry: Option<f64>,
    /// When the latest probe finished, Unix seconds.
    pub last_probe: Option<f64>,
    /// When anything last changed, Unix seconds.
    pub last_change: Option<i64>,
    /// The domain's page.
    pub url: String,
}

/// The rows of `/?format=json`: every domain matching the filters, worst first.
pub fn status_summaries<'a>(
    domains: &[DomainView<'a>],
    query: &StatusQuery,
    base: &str,
) -> Vec<DomainSummary<'a>> {
    select(domains, query)
        .into_iter()
        .map(|view| {
            let summary = view.summary;
            DomainSummary {
                domain: view.domain.display(),
                labels: view.labels,
                outcome: view.outcome().map_or("pending", Outcome::as_str),
                endpoint_step: summary
                    .and_then(|s| s.endpoint.as_ref())
                    .map(|e| e.0.as_str()),
                endpoint_url: summary
                    .and_then(|s| s.endpoint.as_ref())
                    .map(|e| e.1.as_str()),
                problem: summary.and_then(|s| s.problem.clone()),
                finding: summary.and_then(|s| s.finding),
                certificate_days_to_expiry: summary.and_then(|s| s.expiry.as_ref()).map(|n| n.0),
                last_probe: summary.map(|s| s.finished_at),
                last_change: view.last_change_at(),
                url: domain_link(base, view.domain),
            }
        })
        .collect()
}

/// The status page: the domains matching `query`, worst first, one page of them.
pub fn status_page(
    domains: &[DomainView<'_>],
    query: &StatusQuery,
    ctx: &PageContext<'_>,
) -> String {
    let selected = select(domains, query);
    let mut body = String::new();
    let _ = write!(body, "<h1>Autodiscover status</h1>");
    banner(&mut body, ctx);
    let mut counts = [0usize; 6];
    for view in domains {
        counts[view.rank()] += 1;
    }
    let _ = write!(
        body,
        "<p class=\"muted\">{} domains configured. Worst first; this page reloads every {REFRESH_SECONDS} s. \
         <a href=\"{base}/metrics\">Metrics</a> · <a href=\"{base}/?format=json\">JSON</a></p><div class=\"counts\">",
        domains.len(),
        base = escape(ctx.base),
    );
    for (index, outcome) in Outcome::ALL.iter().enumerate() {
        let _ = write!(
            body,
            "<a href=\"{}/{}\">{} {}</a>",
            escape(ctx.base),
            escape(&query.to_query(1, Some(Some(outcome.as_str())))),
            badge(Some(*outcome)),
            counts[index]
        );
    }
    if counts[5] > 0 {
        let _ = write!(
            body,
            "<a href=\"{}/{}\">{} {}</a>",
            escape(ctx.base),
            escape(&query.to_query(1, Some(Some("pending")))),
            badge(None),
            counts[5]
        );
    }
    body.push_str("</div>");
    filter_form(&mut body, domains, query, ctx);
    let pages = selected.len().div_ceil(PAGE_SIZE).max(1);
    let page = query.page.min(pages);
    let start = (page - 1) * PAGE_SIZE;
    let shown = &selected[start.min(selected.len())..(start + PAGE_SIZE).min(selected.len())];
    let _ = write!(
        body,
        "<p class=\"muted\">{} of {} domains match{}.</p>",
        selected.len(),
        domains.len(),
        if pages > 1 {
            format!(
                "; showing {}–{} (page {page} of {pages})",
                start + 1,
                start + shown.len()
            )
        } else {
            String::new()
        }
    );
    body.push_str(
        "<table class=\"domains\"><thead><tr><th>Domain</th><th>Verdict</th><th>What’s wrong</th>\
         <th>Endpoint</th><th>Certificate</th><th>Last changed</th><th>Last probe</th></tr></thead><tbody>\n",
    );
    for view in shown {
        domain_row(&mut body, view, ctx);
    }
    body.push_str("</tbody></table>");
    if pages > 1 {
        body.push_str("<nav class=\"pager\">");
        if page > 1 {
            let _ = write!(
                body,
                "<a href=\"{}/{}\">← previous</a>",
                escape(ctx.base),
                escape(&query.to_query(page - 1, None))
            );
        }
        if page < pages {
            let _ = write!(
                body,
                "<a href=\"{}/{}\">next →</a>",
                escape(ctx.base),
                escape(&query.to_query(page + 1, None))
            );
        }
        body.push_str("</nav>");
    }
    let refresh = format!("{}/{}", ctx.base, query.to_query(page, None));
    page_html("Autodiscover status", &body, Some(&refresh))
}

fn banner(body: &mut String, ctx: &PageContext<'_>) {
    if let Some(failure) = ctx.reload_failure {
        let _ = write!(
            body,
            "<div class=\"banner\" role=\"alert\"><strong>The last configuration reload failed</strong> ({}): {}. \
             The exporter keeps running with the configuration it had.</div>",
            escape(&datetime(failure.at)),
            escape(&failure.error)
        );
    }
}

fn filter_form(
    body: &mut String,
    domains: &[DomainView<'_>],
    query: &StatusQuery,
    ctx: &PageContext<'_>,
) {
    let mut label_values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for view in domains {
        for (name, value) in view.labels {
            if RESERVED_PARAMETERS.contains(&name.as_str()) {
                continue;
            }
            let values = label_values.entry(name).or_default();
            // A label with thousands of values (one per domain) makes a useless menu.
            if values.len() < 500 {
                values.insert(value);
            }
        }
    }
    let _ = write!(
        body,
        "<form class=\"filters\" method=\"get\" action=\"{}/\"><label>Verdict<select name=\"verdict\"><option value=\"\">any</option>",
        escape(ctx.base)
    );
    for value in Outcome::ALL
        .iter()
        .map(|o| o.as_str())
        .chain(std::iter::once("pending"))
    {
        let selected = if query.verdict.as_deref() == Some(value) {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{selected}>{}</option>", escape(value));
    }
    body.push_str("</select></label>");
    for (name, values) in &label_values {
        let _ = write!(
            body,
            "<label>{}<select name=\"{}\"><option value=\"\">any</option>",
            escape(name),
            escape(name)
        );
        for value in values {
            let selected = if query.labels.get(*name).map(String::as_str) == Some(*value) {
                " selected"
            } else {
                ""
            };
            let _ = write!(body, "<option{selected}>{}</option>", escape(value));
        }
        body.push_str("</select></label>");
    }
    let _ = write!(
        body,
        "<label>Domain contains<input name=\"q\" value=\"{}\" size=\"16\"></label>\
         <button type=\"submit\">Filter</button> <a href=\"{}/\">clear</a></form>",
        escape(query.search.as_deref().unwrap_or("")),
        escape(ctx.base)
    );
}

fn domain_row(body: &mut String, view: &DomainView<'_>, ctx: &PageContext<'_>) {
    let domain = view.domain.display();
    let chips: String = view
        .labels
        .iter()
        .map(|(k, v)| {
            format!(
                "<span class=\"chip\" title=\"{}\">{}</span>",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let _ = write!(
        body,
        "<tr><td class=\"name\"><a href=\"{}\">{}</a><br>{chips}</td>",
        escape(&domain_link(ctx.base, view.domain)),
        escape(domain)
    );
    let Some(summary) = view.summary else {
        let _ = writeln!(
            body,
            "<td data-label=\"Verdict\">{}</td><td data-label=\"What’s wrong\" class=\"muted\">not probed yet</td>\
             <td></td><td></td><td></td><td></td></tr>",
            badge(None)
        );
        return;
    };
    let problem = summary.problem.as_ref().map_or_else(
        || "<span class=\"muted\">nothing</span>".to_owned(),
        |p| escape(p),
    );
    let endpoint = match &summary.endpoint {
        Some((step, url)) => format!(
            "<span title=\"{}\">{}</span><br><span class=\"muted\">{}</span>",
            escape(url),
            escape(url_host(url).as_deref().unwrap_or(url)),
            escape(step.as_str())
        ),
        None => "<span class=\"muted\">none</span>".to_owned(),
    };
    let changed = match (view.last_change_at(), view.timeline.last()) {
        (Some(at), last) => format!(
            "<span title=\"{}\">{}</span>",
            escape(&last.map(Change::describe).unwrap_or_default()),
            escape(&age(ctx.now, at as f64))
        ),
        (None, _) => "<span class=\"muted\">no change seen</span>".to_owned(),
    };
    let _ = writeln!(
        body,
        "<td data-label=\"Verdict\">{}</td><td data-label=\"What’s wrong\">{problem}</td>\
         <td data-label=\"Endpoint\">{endpoint}</td><td data-label=\"Certificate\" class=\"cert\">{}</td>\
         <td data-label=\"Last changed\">{changed}</td><td data-label=\"Last probe\">{}</td></tr>",
        badge(Some(summary.outcome)),
        expiry_cell(summary.expiry.as_ref()),
        escape(&age(ctx.now, summary.finished_at))
    );
}

/// The finding a person should read first: the worst, errors before warnings.
fn top_finding(report: &ProbeReport) -> Option<&Finding> {
    report.findings.iter().min_by_key(|f| f.severity)
}

/// The step and the top finding in a few words, e.g. "root_domain: certificate name
/// mismatch"; `None` when nothing is worth a word.
pub fn problem_text(report: &ProbeReport) -> Option<String> {
    let top = top_finding(report)
        .filter(|f| f.severity != Severity::Info || report.outcome != Outcome::Ok)?;
    let words = top.code.as_str().replace('_', " ");
    let service = report
        .service_certificate_prompts
        .first()
        .map(|p| format!("{} {}", p.service, p.host));
    let step = match report.outcome {
        Outcome::CertificatePrompt => report
            .certificate_prompts
            .first()
            .map(|s| s.as_str())
            .or(service.as_deref()),
        Outcome::RedirectPrompt => report.endpoint.as_ref().map(|e| e.step.as_str()),
        Outcome::NotFound => None,
        Outcome::ProbeError => Some("DNS"),
        Outcome::Ok => None,
    };
    Some(match step {
        Some(step) if !words.contains(step) => format!("{step}: {words}"),
        _ => words,
    })
}

fn domain_link(base: &str, domain: &Domain) -> String {
    format!("{base}/domains/{}", url_encode(domain.display()))
}

fn page_html(title: &str, body: &str, refresh: Option<&str>) -> String {
    let refresh = refresh.map_or_else(String::new, |url| {
        format!(
            "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}; url={}\">",
            escape(url)
        )
    });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
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

fn nearest_expiry(report: &ProbeReport) -> Option<(f64, i64, String)> {
    report
        .steps
        .iter()
        .flat_map(|s| s.addresses())
        .filter_map(|(hop, a)| {
            let leaf = a.tls.as_ref()?.leaf()?;
            leaf.parse_error.is_none().then_some(())?;
            Some((leaf.days_to_expiry, leaf.not_after, hop.host().into_owned()))
        })
        .chain(report.services.iter().flat_map(|check| {
            check.addresses.iter().filter_map(|a| {
                let leaf = a.tls.as_ref()?.leaf()?;
                leaf.parse_error.is_none().then_some(())?;
                Some((
                    leaf.days_to_expiry,
                    leaf.not_after,
                    format!("{} {}", check.target.service, check.target.host),
                ))
            })
        }))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

fn expiry_cell(expiry: Option<&(f64, i64, String)>) -> String {
    match expiry {
        None => "<span class=\"muted\">none</span>".to_owned(),
        Some(&(days, not_after, ref host)) => {
            let class = if days < 0.0 {
                "bad"
            } else if days < EXPIRY_WARNING_DAYS {
                "warn"
            } else {
                ""
            };
            format!(
                "<span class=\"{class}\">{:.0} days</span><br><span class=\"muted\">{}, {}</span>",
                days.floor(),
                escape(host),
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
    } else if seconds < 172_800.0 {
        format!("{:.1} h ago", seconds / 3600.0)
    } else {
        format!("{:.0} days ago", seconds / 86400.0)
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn datetime(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| unix.to_string())
}

/// The page of one domain: verdict, findings, the steps as a tree, delegation, the timeline,
/// and a button that probes now.
pub fn domain_page(
    view: &DomainView<'_>,
    report: Option<&ProbeReport>,
    ctx: &PageContext<'_>,
) -> String {
    let domain = view.domain.display();
    let link = domain_link(ctx.base, view.domain);
    let mut body = format!(
        "<p><a href=\"{}/\">← all domains</a></p><h1>{}</h1>",
        escape(ctx.base),
        escape(domain)
    );
    banner(&mut body, ctx);
    let chips: String = view
        .labels
        .iter()
        .map(|(k, v)| format!("<span class=\"chip\">{}={}</span>", escape(k), escape(v)))
        .collect();
    let probe_form = format!(
        "<form method=\"post\" action=\"{}/probe\"><button type=\"submit\">Probe now</button></form>",
        escape(&link)
    );
    let Some(report) = report else {
        let _ = write!(
            body,
            "<p>{chips}</p><div class=\"actions\">{} <span>Not probed yet; this page fills in after the first probe.</span> {probe_form}</div>",
            badge(None)
        );
        timeline_section(&mut body, view);
        return page_html(domain, &body, Some(&link));
    };
    let _ = write!(
        body,
        "<p>{chips}</p><div class=\"actions\">{} <span>{}</span></div>\
         <p class=\"muted\">Probed {} ({}) as <code>{}</code> in {:.2} s.</p>\
         <div class=\"actions\">{probe_form} <a href=\"{}?format=json\">JSON</a> \
         <a href=\"{}/probe?target={}&amp;debug=true\">probe with the plain-text trace</a></div>",
        badge(Some(report.outcome)),
        escape(report.outcome.describe()),
        escape(&age(ctx.now, report.finished_at())),
        escape(&datetime(report.finished_at().round() as i64)),
        escape(&report.address.to_string()),
        report.duration_seconds,
        escape(&link),
        escape(ctx.base),
        url_encode(domain)
    );
    if let Some(endpoint) = &report.endpoint {
        let _ = write!(
            body,
            "<p>Outlook finds its server at <code>{}</code> through <strong>{}</strong>.</p>",
            escape(&endpoint.url),
            escape(endpoint.step.as_str())
        );
    }
    if !report.findings.is_empty() {
        body.push_str("<h2>Findings</h2><table class=\"findings\"><thead><tr><th>Severity</th><th>Finding</th><th>How to fix</th></tr></thead><tbody>");
        for finding in &report.findings {
            let class = match finding.severity {
                Severity::Error => "bad",
                Severity::Warning => "warn",
                Severity::Info => "muted",
            };
            let _ = write!(
                body,
                "<tr><td class=\"{class} sev\">{}</td><td><code>{}</code><br>{}</td><td>{}</td></tr>",
                finding.severity.as_str(),
                escape(finding.code.as_str()),
                escape(&finding.message),
                escape(&finding.hint)
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("<h2>Steps, in Outlook’s order</h2><div class=\"tree\">");
    let endpoint_step = report.endpoint.as_ref().map(|e| e.step);
    for (index, (address, steps)) in report.discoveries().enumerate() {
        if index > 0 {
            let _ = write!(
                body,
                "<p><strong>Discovery restarted for {}</strong> (redirectAddr)</p>",
                escape(&address.to_string())
            );
        }
        for step in steps {
            let after_endpoint = index == 0 && endpoint_step.is_some_and(|e| step.step > e);
            step_tree(&mut body, step, after_endpoint);
        }
    }
    body.push_str("</div>");
    services_section(&mut body, report);
    delegation_section(&mut body, report);
    timeline_section(&mut body, view);
    page_html(domain, &body, Some(&link))
}

/// ✓ found, ✗ Outlook stops with an alert or an error there, ⚠ nothing there (Outlook moves
/// on), – switched off.
fn icon(status: StepStatus) -> (&'static str, &'static str) {
    use StepStatus::*;
    match status {
        EndpointFound => ("✓", "good"),
        CertNameMismatch | CertUntrusted | CertExpired | CertNotYetValid => ("✗", "bad"),
        TlsHandshakeFailed | RedirectInvalid | DnsError | Timeout => ("✗", "bad"),
        Excluded => ("–", "muted"),
        _ => ("⚠", "warn"),
    }
}

fn step_tree(body: &mut String, step: &StepTrace, after_endpoint: bool) {
    let spec = step.step.spec();
    let (mark, class) = icon(step.status);
    let open = if step.status.is_certificate_prompt() || step.status == StepStatus::EndpointFound {
        " open"
    } else {
        ""
    };
    let _ = write!(
        body,
        "<details{open}><summary><span class=\"i {class}\">{mark}</span> <strong>{}</strong> — {} \
         <code>{}</code> <span class=\"muted\">{:.0} ms{}</span></summary><ul class=\"facts\"><li>{}</li>",
        escape(spec.label),
        escape(spec.title),
        escape(step.status.as_str()),
        step.duration_seconds * 1000.0,
        if after_endpoint {
            " · after the endpoint: Outlook does not get here"
        } else {
            ""
        },
        escape(&step.url)
    );
    if let Some(srv) = &step.srv {
        let records: Vec<String> = srv
            .records
            .iter()
            .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
            .collect();
        let _ = write!(
            body,
            "<li>SRV <code>{}</code>: {}</li>",
            escape(&srv.name),
            escape(&if records.is_empty() {
                srv.answer.describe()
            } else {
                records.join(", ")
            })
        );
    }
    body.push_str("</ul>");
    for hop in &step.hops {
        hop_tree(body, hop);
    }
    body.push_str("</details>");
}

fn hop_tree(body: &mut String, hop: &Hop) {
    let (mark, class) = icon(hop.status);
    let origin = match &hop.origin {
        HopOrigin::Start => String::new(),
        HopOrigin::HttpRedirect { status } => format!(" (after an HTTP {status} redirect)"),
        HopOrigin::PoxRedirectUrl => " (after a redirectUrl answer)".to_owned(),
        HopOrigin::Microsoft365 => " (the URL Microsoft 365 named)".to_owned(),
        HopOrigin::SrvTarget { record } => format!(" (SRV {} {})", record.target, record.port),
    };
    let _ = write!(
        body,
        "<details open><summary><span class=\"i {class}\">{mark}</span> <code>{}</code>{}</summary><ul class=\"facts\">",
        escape(&hop.url),
        escape(&origin)
    );
    if let Some(lookup) = &hop.lookup {
        let mut text = format!("DNS {}: ", lookup.host);
        for cname in &lookup.cname_chain {
            let _ = write!(text, "CNAME {} → {}; ", cname.name, cname.target);
        }
        if lookup.addresses.is_empty() {
            let _ = write!(
                text,
                "A {}, AAAA {}",
                lookup.a.describe(),
                lookup.aaaa.describe()
            );
        } else {
            let addresses: Vec<String> = lookup.addresses.iter().map(ToString::to_string).collect();
            text.push_str(&addresses.join(", "));
        }
        let _ = write!(body, "<li>{}</li>", escape(&text));
    }
    body.push_str("</ul>");
    for attempt in &hop.addresses {
        address_tree(body, hop, attempt);
    }
    body.push_str("</details>");
}

fn address_tree(body: &mut String, hop: &Hop, attempt: &AddressAttempt) {
    let (mark, class) = icon(attempt.status);
    let _ = write!(
        body,
        "<details><summary><span class=\"i {class}\">{mark}</span> {} <code>{}</code></summary><ul class=\"facts\">",
        escape(&attempt.address.to_string()),
        escape(attempt.status.as_str())
    );
    let connect = match &attempt.connect {
        ConnectResult::Connected => format!(
            "TCP connected in {:.0} ms",
            attempt.connect_seconds * 1000.0
        ),
        ConnectResult::Refused => "TCP connection refused".to_owned(),
        ConnectResult::Timeout => "TCP connect timed out".to_owned(),
        ConnectResult::Failed { detail } => format!("TCP failed: {detail}"),
        ConnectResult::LocalError { detail } => {
            format!("not tried: the exporter ran out of a local resource ({detail})")
        }
    };
    let _ = write!(body, "<li>{}</li>", escape(&connect));
    if let Some(tls) = &attempt.tls {
        let handshake = match &tls.handshake {
            TlsHandshake::Established => format!(
                "TLS {} {}",
                tls.version.as_deref().unwrap_or(""),
                tls.cipher.as_deref().unwrap_or("")
            ),
            TlsHandshake::TimedOut => "TLS handshake timed out".to_owned(),
            TlsHandshake::Failed { error } => format!("TLS handshake failed: {error}"),
        };
        let _ = write!(body, "<li>{}</li>", escape(&handshake));
        if let Some(leaf) = tls.leaf() {
            let verdict = tls.verdict.as_ref();
            let check = |ok: bool, what: &str| {
                if ok {
                    format!("<span class=\"good\">✓ {what}</span>")
                } else {
                    format!("<span class=\"bad\">✗ {what}</span>")
                }
            };
            let checks = verdict.map_or_else(String::new, |v| {
                format!(
                    "{} · {} · {}",
                    check(v.name_matches, &format!("name ({})", hop.host())),
                    check(v.trusted, "trusted"),
                    check(v.validity == Validity::Valid, "dates")
                )
            });
            let _ = write!(
                body,
                "<li><details><summary>Certificate <code>{}</code> {checks}</summary><ul class=\"facts\">\
                 <li>Names: {}</li><li>Issuer: {}</li><li>Valid {} to {} ({:.0} days left)</li>\
                 <li>Serial {}</li><li>SHA-256 <code>{}</code></li>{}</ul></details></li>",
                escape(&leaf.subject),
                escape(&leaf.dns_names.join(", ")),
                escape(&leaf.issuer),
                date(leaf.not_before),
                date(leaf.not_after),
                leaf.days_to_expiry.floor(),
                escape(&leaf.serial),
                escape(&leaf.fingerprint_sha256),
                verdict
                    .and_then(|v| v.trust_error.as_ref())
                    .map(|e| format!("<li class=\"bad\">Trust: {}</li>", escape(e)))
                    .unwrap_or_default()
            );
        }
    }
    for exchange in attempt.exchanges() {
        let _ = write!(body, "<li>{}</li>", escape(&http_line(exchange)));
    }
    body.push_str("</ul></details>");
}

fn http_line(exchange: &HttpExchange) -> String {
    let mut text = format!("HTTP {}", exchange.method.as_str());
    match exchange.status {
        Some(status) => {
            let _ = write!(text, " → {status}");
        }
        None => text.push_str(" → no answer"),
    }
    if !exchange.www_authenticate.is_empty() {
        let _ = write!(
            text,
            "; WWW-Authenticate: {}",
            exchange.www_authenticate.join(", ")
        );
    }
    if let Some(location) = &exchange.location {
        let _ = write!(text, "; Location: {location}");
    }
    for (name, value) in &exchange.exchange_headers {
        let _ = write!(text, "; {name}: {value}");
    }
    text
}

/// After Autodiscover: where the settings came from, the credentials (never their value) and
/// the servers the settings name, each with its status and certificate.
fn services_section(body: &mut String, report: &ProbeReport) {
    if report.settings.is_none() && report.credentials.is_none() {
        return;
    }
    body.push_str(
        "<h2>After Autodiscover: the servers Outlook connects to next</h2><ul class=\"facts\">",
    );
    if let Some(used) = &report.credentials {
        let text = match &used.result {
            CredentialsResult::Sent { address, exchange } => format!(
                "Credentials sent to {} ({address}) with Basic authentication (not shown): {}",
                used.url,
                http_line(exchange)
            ),
            CredentialsResult::NotSent { reason } => {
                format!("Credentials not sent to {}: {reason}", used.url)
            }
        };
        let _ = write!(body, "<li>{}</li>", escape(&text));
    }
    if let Some(source) = &report.settings_source {
        let _ = write!(
            body,
            "<li>Settings from <code>{}</code> ({})</li>",
            escape(&source.url),
            if source.authenticated {
                "authenticated"
            } else {
                "no authentication"
            }
        );
    }
    body.push_str("</ul>");
    if report.services.is_empty() {
        if report.settings.is_some() {
            body.push_str("<p class=\"muted\">The settings name no server to check.</p>");
        }
        return;
    }
    body.push_str(
        "<table class=\"findings\"><thead><tr><th>Service</th><th>Server</th><th>Status</th>\
         <th>Certificate</th></tr></thead><tbody>",
    );
    for check in &report.services {
        service_row(body, check);
    }
    body.push_str("</tbody></table>");
}

fn service_row(body: &mut String, check: &ServiceCheck) {
    let target = &check.target;
    let class = match check.status {
        ServiceStatus::Ok => "good",
        status if status.as_str().starts_with("cert_") => "bad",
        _ => "warn",
    };
    let place = target
        .url
        .clone()
        .unwrap_or_else(|| format!("{}:{}", target.host, target.port));
    let detail = check
        .addresses
        .iter()
        .find_map(|a| a.detail.as_deref())
        .map(|d| format!("<br><span class=\"muted\">{}</span>", escape(d)))
        .unwrap_or_default();
    let certificate = check
        .addresses
        .iter()
        .find_map(|a| {
            let tls = a.tls.as_ref()?;
            Some((tls.leaf()?, tls.verdict.as_ref()))
        })
        .map_or_else(
            || "<span class=\"muted\">none</span>".to_owned(),
            |(leaf, verdict)| {
                let name = match verdict {
                    Some(v) if v.name_matches => "<span class=\"good\">✓ name</span>".to_owned(),
                    Some(_) => format!(
                        "<span class=\"bad\">✗ name ({})</span>",
                        escape(&target.host)
                    ),
                    None => String::new(),
                };
                let days = if leaf.days_to_expiry < EXPIRY_WARNING_DAYS {
                    "warn"
                } else {
                    "muted"
                };
                format!(
                    "{} {name}<br><span class=\"{days}\">{:.0} days, {}</span>",
                    escape(&leaf.dns_names.join(", ")),
                    leaf.days_to_expiry.floor(),
                    date(leaf.not_after)
                )
            },
        );
    let _ = write!(
        body,
        "<tr><td><strong>{}</strong> <span class=\"muted\">{}</span>{}</td><td><code>{}</code></td>\
         <td class=\"{class} sev\">{}{detail}</td><td>{certificate}</td></tr>",
        escape(target.service.as_str()),
        escape(&target.protocol),
        if target.external {
            ""
        } else {
            " <span class=\"muted\">(internal URL)</span>"
        },
        escape(&place),
        escape(check.status.as_str())
    );
}

fn delegation_section(body: &mut String, report: &ProbeReport) {
    let Some(delegation) = &report.delegation else {
        return;
    };
    body.push_str("<h2>DNS delegation</h2><ul class=\"facts\">");
    let ns = if delegation.nameservers.is_empty() {
        describe_answer(&delegation.ns_answer)
    } else {
        delegation.nameservers.join(", ")
    };
    let _ = write!(body, "<li>NS: {}</li>", escape(&ns));
    let soa = match &delegation.soa {
        Some(soa) => format!("serial {}, primary {}", soa.serial, soa.primary),
        None => describe_answer(&delegation.soa_answer),
    };
    let _ = write!(body, "<li>SOA: {}</li></ul>", escape(&soa));
}

fn describe_answer(answer: &DnsAnswer) -> String {
    answer.describe()
}

fn timeline_section(body: &mut String, view: &DomainView<'_>) {
    body.push_str("<h2>What changed</h2>");
    if view.timeline.is_empty() {
        body.push_str("<p class=\"muted\">No change seen yet. Every change of verdict, endpoint, step status, SRV records, addresses, certificate, NS set or SOA serial is listed here.</p>");
        return;
    }
    if let Some(change) = view.memory.and_then(|m| m.delegation_change.as_ref()) {
        let _ = write!(
            body,
            "<p>Name servers last changed {}: {} → {}.</p>",
            escape(&datetime(change.at)),
            escape(if change.before.is_empty() {
                "none"
            } else {
                &change.before
            }),
            escape(if change.after.is_empty() {
                "none"
            } else {
                &change.after
            })
        );
    }
    body.push_str("<ol class=\"timeline\" reversed>");
    for change in view.timeline.iter().rev() {
        let _ = write!(
            body,
            "<li><time>{}</time>{}</li>",
            escape(&datetime(change.at)),
            escape(&change.describe())
        );
    }
    body.push_str("</ol>");
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

    fn pairs(text: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn the_query_string_holds_the_filters_and_round_trips() {
        let query = StatusQuery::parse(&pairs(
            "verdict=not_found&customer=Company+B&q=ACME&page=3&format=json&team=",
        ));
        assert_eq!(query.verdict.as_deref(), Some("not_found"));
        assert_eq!(query.search.as_deref(), Some("acme"));
        assert_eq!(query.page, 3);
        assert_eq!(query.labels.len(), 1);
        assert_eq!(query.labels["customer"], "Company B");
        let again = StatusQuery::parse(&pairs(query.to_query(3, None).trim_start_matches('?')));
        assert_eq!(again, query);
        assert_eq!(query.to_query(1, Some(None)), "?q=acme&customer=Company+B");
        assert_eq!(StatusQuery::parse(&pairs("page=0")).page, 1);
        assert_eq!(StatusQuery::parse(&pairs("page=x")).page, 1);
    }

    #[test]
    fn pages_hold_200_domains_and_link_to_the_next_with_the_filters() {
        let domains: Vec<Domain> = (0..450)
            .map(|i| Domain::parse(&format!("d{i:03}.example")).unwrap())
            .collect();
        let mut labels = BTreeMap::new();
        labels.insert(
            "customer".to_owned(),
            "<script>alert(1)</script>".to_owned(),
        );
        let views: Vec<DomainView<'_>> = domains
            .iter()
            .map(|domain| DomainView {
                domain,
                labels: &labels,
                summary: None,
                memory: None,
                timeline: &[],
            })
            .collect();
        let ctx = PageContext {
            now: 0,
            base: "",
            reload_failure: None,
        };
        let query = StatusQuery::parse(&pairs("verdict=pending"));
        let first = status_page(&views, &query, &ctx);
        assert_eq!(first.matches("<tr><td class=\"name\">").count(), PAGE_SIZE);
        assert!(first.contains("showing 1–200 (page 1 of 3)"));
        assert!(first.contains("href=\"/?verdict=pending&amp;page=2\">next →</a>"));
        assert!(!first.contains("<script>"), "labels are escaped");
        assert!(first.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        let last = status_page(
            &views,
            &StatusQuery::parse(&pairs("verdict=pending&page=3")),
            &ctx,
        );
        assert_eq!(last.matches("<tr><td class=\"name\">").count(), 50);
        assert!(last.contains("← previous"));
        assert!(last.contains("d449.example"));
        assert!(last.contains("content=\"60; url=/?verdict=pending&amp;page=3\""));
        let none = status_page(&views, &StatusQuery::parse(&pairs("verdict=ok")), &ctx);
        assert!(none.contains("0 of 450 domains match"));
    }

    #[test]
    fn the_policy_allows_only_the_pages_own_style() {
        let policy = content_security_policy("");
        assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(policy.contains("form-action 'self'; "));
        assert!(!policy.contains("script-src"));
        let behind_proxy = content_security_policy("https://monitor.example.net/autodiscover");
        assert!(behind_proxy.contains("form-action 'self' https://monitor.example.net; "));
    }

    #[test]
    fn datetimes_are_utc() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(datetime(1_767_225_600 + 3723), "2026-01-01 01:02:03 UTC");
    }
}
