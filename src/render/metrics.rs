//! A `ProbeReport` as Prometheus metrics.
//!
//! The sample lines of a domain are rendered once, when its probe finishes, and kept per metric
//! family; a scrape writes each family's header and concatenates the domains' lines. Scrapes
//! never wait for a probe and cost a copy, which keeps 10,000 domains well under 100 ms.

use crate::model::facts::{StepTrace, TlsFacts};
use crate::model::history::{DomainMemory, regressed_after};
use crate::model::labels::RESERVED_LABELS;
use crate::model::report::ProbeReport;
use crate::model::settings::ServiceStatus;
use crate::model::step::{Outcome, StepId};
use crate::model::text::{is_unsafe, push_escaped};
use crate::render::gzip::{DeflateWriter, inflate};
use flate2::Compression;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// Exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Classic,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// Picks the format the scraper asks for in its `Accept` header.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Classic,
        }
    }

    /// The `Content-Type` of the response.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Info,
}

/// How a family is declared.
struct FamilySpec {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    unit: Option<&'static str>,
}

macro_rules! families {
    ($($variant:ident = $kind:ident($name:literal, $help:literal),)+) => {
        /// A per-domain metric family. Samples are written through [`Lines::push`], which files
        /// each line under its own family, so a line cannot land under another family's header.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Family {
            $($variant,)+
        }

        impl Family {
            const ALL: &'static [Self] = &[$(Self::$variant,)+];

            fn spec(self) -> FamilySpec {
                match self {
                    $(Self::$variant => $kind($name, $help),)+
                }
            }
        }
    };
}

impl Family {
    /// Length of the metric name on its sample lines.
    fn sample_name_len(self) -> usize {
        let spec = self.spec();
        match spec.kind {
            Kind::Info => spec.name.len() + "_info".len(),
            Kind::Gauge => spec.name.len(),
        }
    }
}

const fn gauge(name: &'static str, help: &'static str) -> FamilySpec {
    FamilySpec {
        name,
        help,
        kind: Kind::Gauge,
        unit: None,
    }
}

const fn seconds(name: &'static str, help: &'static str) -> FamilySpec {
    FamilySpec {
        name,
        help,
        kind: Kind::Gauge,
        unit: Some("seconds"),
    }
}

const fn info(name: &'static str, help: &'static str) -> FamilySpec {
    FamilySpec {
        name,
        help,
        kind: Kind::Info,
        unit: None,
    }
}

families! {
    Success = gauge(
        "autodiscover_probe_success",
        "1 when Outlook finds an endpoint without a certificate alert."
    ),
    Outcome = gauge(
        "autodiscover_outcome",
        "Verdict of the probe: 1 for the current outcome, 0 for the others."
    ),
    StepReached = gauge(
        "autodiscover_step_reached",
        "Step where Outlook finds its endpoint (an id: 1 root_domain, 2 autodiscover_domain, 3 http_redirect, 4 srv_record, 5 microsoft365), 0 none."
    ),
    StepStatus = gauge(
        "autodiscover_step_status",
        "1, labelled with the current status of each step."
    ),
    StepDuration = seconds(
        "autodiscover_step_duration_seconds",
        "Time spent on each step of the probe."
    ),
    CertificatePrompt = gauge(
        "autodiscover_certificate_prompt",
        "1 if Outlook shows a certificate security alert at this step."
    ),
    NameMismatch = gauge(
        "autodiscover_certificate_name_mismatch",
        "1 if the certificate presented for host does not cover that name."
    ),
    RedirectPrompt = gauge(
        "autodiscover_redirect_prompt",
        "1 if Outlook asks the user to allow a redirect (HTTP redirect or SRV endpoint)."
    ),
    SrvPresent = gauge(
        "autodiscover_srv_record_present",
        "1 if _autodiscover._tcp has a record clients use (real target, port 443)."
    ),
    SrvInfo = info(
        "autodiscover_srv_record",
        "One series per SRV record of _autodiscover._tcp."
    ),
    EndpointInfo = info(
        "autodiscover_endpoint",
        "The endpoint Outlook finds, with its step and URL."
    ),
    DaysToExpiry = gauge(
        "autodiscover_certificate_days_to_expiry",
        "Days until the leaf certificate presented for host expires (earliest across its addresses; negative once expired)."
    ),
    NotAfter = seconds(
        "autodiscover_certificate_not_after_timestamp_seconds",
        "notAfter of the leaf certificate presented for host, Unix time (earliest across its addresses)."
    ),
    CertificateInfo = info(
        "autodiscover_certificate",
        "One series per distinct leaf certificate presented for host."
    ),
    ServiceInfo = info(
        "autodiscover_service",
        "One series per service endpoint named in the Autodiscover settings (service, wire protocol, host, port)."
    ),
    ServiceStatus = gauge(
        "autodiscover_service_status",
        "1, labelled with the current status of each service and host named in the settings (worst across its ports and addresses)."
    ),
    ServiceCertificatePrompt = gauge(
        "autodiscover_service_certificate_prompt",
        "1 if Outlook shows a certificate security alert when it connects to this service and host."
    ),
    ProbeDuration = seconds(
        "autodiscover_probe_duration_seconds",
        "Duration of the probe."
    ),
    ProbeTimestamp = seconds(
        "autodiscover_probe_timestamp_seconds",
        "When the probe finished, Unix time."
    ),
    ProbeInterval = seconds(
        "autodiscover_probe_interval_seconds",
        "Configured interval between background probes of the domain."
    ),
    Nameservers = info(
        "autodiscover_domain_nameservers",
        "The NS set of the domain's delegation: sorted, comma-joined names."
    ),
    SoaSerial = gauge(
        "autodiscover_domain_soa_serial",
        "Serial number of the domain's SOA record."
    ),
    DelegationChanged = seconds(
        "autodiscover_domain_delegation_changed_timestamp_seconds",
        "When the domain's NS set last changed, Unix time (from the history; absent until a change was seen)."
    ),
    RegressedAfterDelegationChange = gauge(
        "autodiscover_regressed_after_delegation_change",
        "1 while the verdict is worse than before a change of the domain's NS set made within the last 7 days."
    ),
}

/// Sample lines being rendered, in the order they are written, each marked with its family; they
/// are put in family order at the end. A line is kept without its metric name and the domain's
/// labels, which every line of the family and of the domain share: from the text after the
/// domain's labels (`,step="x"} 1` or `} 1`) to the newline. One buffer for all lines (a domain
/// renders about 4 KB in some 60 lines) rather than one per family, which grew and moved each
/// of some 30 buffers separately.
struct Lines {
    text: String,
    /// Family, start and end in `text` of each line, in writing order.
    lines: Vec<(u8, u32, u32)>,
}

impl Lines {
    fn new() -> Self {
        Self {
            text: String::with_capacity(4096),
            lines: Vec::with_capacity(96),
        }
    }

    /// Writes one sample of `family`.
    fn push(&mut self, family: Family, labels: &[(&str, &str)], value: f64) {
        let start = self.text.len();
        sample_tail(&mut self.text, labels, value);
        // A domain's lines are a few kilobytes: offsets fit in u32 (saturating at worst shows
        // a truncated line, never a panic); the family index is below FAMILY_COUNT.
        let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.lines
            .push((family as u8, offset(start), offset(self.text.len())));
    }

    fn into_samples(mut self, base: &str) -> DomainSamples {
        // Stable: within a family, lines keep the order they were written in.
        self.lines.sort_by_key(|&(family, _, _)| family);
        let mut tails = String::with_capacity(self.text.len());
        let mut ends = [0u32; FAMILY_COUNT];
        let mut lines = self.lines.iter().peekable();
        for (index, end) in ends.iter_mut().enumerate() {
            while let Some(&(_, start, stop)) =
                lines.next_if(|&&(family, _, _)| usize::from(family) == index)
            {
                tails.push_str(self.text.get(start as usize..stop as usize).unwrap_or(""));
            }
            *end = u32::try_from(tails.len()).unwrap_or(u32::MAX);
        }
        DomainSamples {
            base: base.into(),
            tails: tails.into_boxed_str(),
            ends,
        }
    }
}

/// The rendered sample lines of one domain, compactly: the domain's label prefix once, and the
/// rest of each line (labels after the domain's, value) family after family. A scrape writes
/// the metric name and the prefix in front of each rest; at 10,000 domains this keeps about a
/// third of the 39 MB the full lines would take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSamples {
    base: Box<str>,
    tails: Box<str>,
    ends: [u32; FAMILY_COUNT],
}

impl DomainSamples {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.base.len() + self.tails.len()
    }

    /// Nothing rendered.
    pub fn is_empty(&self) -> bool {
        self.tails.is_empty()
    }

    /// The line rests of family number `index`.
    fn family(&self, index: usize) -> &str {
        let start = match index {
            0 => 0,
            i => self.ends.get(i - 1).copied().unwrap_or(0) as usize,
        };
        let end = self.ends.get(index).copied().unwrap_or(0) as usize;
        self.tails.get(start..end).unwrap_or("")
    }

    /// Bytes the full lines take in the exposition.
    pub fn exposed_len(&self) -> usize {
        (0..FAMILY_COUNT)
            .map(|index| {
                let name = Family::ALL[index].sample_name_len();
                let lines = self.family(index).matches('\n').count();
                self.family(index).len() + lines * (name + 1 + self.base.len())
            })
            .sum()
    }
}

impl Default for DomainSamples {
    fn default() -> Self {
        Self {
            base: "".into(),
            tails: "".into(),
            ends: [0; FAMILY_COUNT],
        }
    }
}

/// The label prefix of a domain: `domain="d",customer="c"` (sorted custom labels).
pub fn domain_labels(domain: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    push_label(&mut out, "domain", domain);
    for (name, value) in labels {
        out.push(',');
        push_label(&mut out, name, value);
    }
    out
}

/// Renders a domain's sample lines (no history: no delegation change time).
pub fn render_domain(report: &ProbeReport, base_labels: &str, interval: Duration) -> DomainSamples {
    render_domain_with_history(report, base_labels, interval, &DomainMemory::default())
}

/// Renders a domain's sample lines; `memory` is what the history knows of the domain.
pub fn render_domain_with_history(
    report: &ProbeReport,
    base_labels: &str,
    interval: Duration,
    memory: &DomainMemory,
) -> DomainSamples {
    let mut f = Lines::new();
    f.push(Family::Success, &[], bool_value(report.success()));
    for outcome in Outcome::ALL {
        f.push(
            Family::Outcome,
            &[("outcome", outcome.as_str())],
            bool_value(report.outcome == outcome),
        );
    }
    let reached = report.endpoint.as_ref().map_or(0, |e| e.step.number());
    f.push(Family::StepReached, &[], f64::from(reached));
    for step in &report.steps {
        let name = step.step.as_str();
        f.push(
            Family::StepStatus,
            &[("step", name), ("status", step.status.as_str())],
            1.0,
        );
        f.push(
            Family::StepDuration,
            &[("step", name)],
            step.duration_seconds,
        );
    }
    for step in StepId::ALL {
        let prompt = report.certificate_prompts.contains(step);
        f.push(
            Family::CertificatePrompt,
            &[("step", step.as_str())],
            bool_value(prompt),
        );
    }
    f.push(
        Family::RedirectPrompt,
        &[],
        bool_value(report.redirect_prompt),
    );
    f.push(Family::SrvPresent, &[], bool_value(report.srv.present));
    for record in &report.srv.records {
        let (port, priority, weight) = (
            record.port.to_string(),
            record.priority.to_string(),
            record.weight.to_string(),
        );
        f.push(
            Family::SrvInfo,
            &[
                ("target", &record.target),
                ("port", &port),
                ("priority", &priority),
                ("weight", &weight),
            ],
            1.0,
        );
    }
    if let Some(endpoint) = &report.endpoint {
        f.push(
            Family::EndpointInfo,
            &[("step", endpoint.step.as_str()), ("url", &endpoint.url)],
            1.0,
        );
    }
    for step in &report.steps {
        render_certificates(&mut f, step);
    }
    render_services(&mut f, report);
    f.push(Family::ProbeDuration, &[], report.duration_seconds);
    f.push(Family::ProbeTimestamp, &[], report.finished_at());
    f.push(Family::ProbeInterval, &[], interval.as_secs_f64());
    if let Some(delegation) = &report.delegation {
        if delegation.nameservers_known() {
            f.push(
                Family::Nameservers,
                &[("nameservers", &delegation.nameservers_joined())],
                1.0,
            );
        }
        if let Some(soa) = &delegation.soa {
            f.push(Family::SoaSerial, &[], f64::from(soa.serial));
        }
    }
    let finished = report.finished_at().round() as i64;
    let regressed = match &memory.delegation_change {
        Some(change) => {
            f.push(Family::DelegationChanged, &[], change.at as f64);
            regressed_after(change, report.outcome, finished).is_some()
        }
        None => false,
    };
    f.push(
        Family::RegressedAfterDelegationChange,
        &[],
        bool_value(regressed),
    );
    f.into_samples(base_labels)
}

/// The step label of the certificate metrics of service endpoints.
pub const SERVICE_STEP_LABEL: &str = "service";

fn render_services(f: &mut Lines, report: &ProbeReport) {
    // Series are keyed by (service, host): several ports of one host fold into their worst.
    let mut by_host: BTreeMap<(&str, &str), (ServiceStatus, bool)> = BTreeMap::new();
    let mut certificates: BTreeMap<String, HostCertificates<'_>> = BTreeMap::new();
    for check in &report.services {
        let target = &check.target;
        let port = target.port.to_string();
        f.push(
            Family::ServiceInfo,
            &[
                ("service", target.service.as_str()),
                ("protocol", &target.protocol),
                ("host", &target.host),
                ("port", &port),
            ],
            1.0,
        );
        let entry = by_host
            .entry((target.service.as_str(), target.host.as_str()))
            .or_insert((check.status, false));
        entry.0 = entry.0.min(check.status);
        entry.1 |= check.status.is_certificate_prompt();
        for attempt in &check.addresses {
            if let Some(tls) = &attempt.tls {
                add_certificate(&mut certificates, &target.host, tls);
            }
        }
    }
    for ((service, host), (status, prompt)) in &by_host {
        f.push(
            Family::ServiceStatus,
            &[
                ("service", service),
                ("host", host),
                ("status", status.as_str()),
            ],
            1.0,
        );
        f.push(
            Family::ServiceCertificatePrompt,
            &[("service", service), ("host", host)],
            bool_value(*prompt),
        );
    }
    write_certificates(f, SERVICE_STEP_LABEL, &certificates);
}

struct HostCertificates<'a> {
    mismatch: bool,
    /// Earliest notAfter and days to expiry, of the leaves whose dates are known.
    expiry: Option<(i64, f64)>,
    /// Subject, issuer, serial and fingerprint of each distinct leaf, borrowed from the report.
    leaves: Vec<[&'a str; 4]>,
}

fn render_certificates(f: &mut Lines, step: &StepTrace) {
    let mut hosts: BTreeMap<String, HostCertificates<'_>> = BTreeMap::new();
    for hop in &step.hops {
        for attempt in &hop.addresses {
            if let Some(tls) = &attempt.tls {
                add_certificate(&mut hosts, &hop.host(), tls);
            }
        }
    }
    write_certificates(f, step.step.as_str(), &hosts);
}

fn add_certificate<'a>(
    hosts: &mut BTreeMap<String, HostCertificates<'a>>,
    host: &str,
    tls: &'a TlsFacts,
) {
    let (Some(leaf), Some(verdict)) = (tls.leaf(), &tls.verdict) else {
        return;
    };
    let entry = hosts.entry(host.to_owned()).or_insert(HostCertificates {
        mismatch: false,
        expiry: None,
        leaves: Vec::new(),
    });
    entry.mismatch |= !verdict.name_matches;
    // Dates of a certificate that cannot be parsed are unknown: no expiry is exported for it
    // (the trace says why), rather than a notAfter of 1970.
    if leaf.parse_error.is_none() {
        entry.expiry = Some(match entry.expiry {
            Some((not_after, days)) => {
                (not_after.min(leaf.not_after), days.min(leaf.days_to_expiry))
            }
            None => (leaf.not_after, leaf.days_to_expiry),
        });
    }
    let identity = [
        leaf.subject.as_str(),
        leaf.issuer.as_str(),
        leaf.serial.as_str(),
        leaf.fingerprint_sha256.as_str(),
    ];
    if !entry.leaves.contains(&identity) {
        entry.leaves.push(identity);
    }
}

fn write_certificates(
    f: &mut Lines,
    step_name: &str,
    hosts: &BTreeMap<String, HostCertificates<'_>>,
) {
    for (host, certs) in hosts {
        let labels = [("step", step_name), ("host", host.as_str())];
        f.push(Family::NameMismatch, &labels, bool_value(certs.mismatch));
        if let Some((not_after, days)) = certs.expiry {
            f.push(Family::DaysToExpiry, &labels, days);
            f.push(Family::NotAfter, &labels, not_after as f64);
        }
        for [subject, issuer, serial, fingerprint] in &certs.leaves {
            f.push(
                Family::CertificateInfo,
                &[
                    ("step", step_name),
                    ("host", host.as_str()),
                    ("subject", subject),
                    ("issuer", issuer),
                    ("serial", serial),
                    ("fingerprint_sha256", fingerprint),
                ],
                1.0,
            );
        }
    }
}

/// Writes every per-domain family for `domains`, headers included, to any text sink (a
/// `String`, or a compressor through [`IoText`]).
pub fn write_domains<'a, W: Write>(
    out: &mut W,
    format: Format,
    domains: impl Iterator<Item = &'a DomainSamples> + Clone,
) -> std::fmt::Result {
    for (index, family) in Family::ALL.iter().enumerate() {
        let spec = family.spec();
        write_header(out, format, &spec)?;
        let suffix = match spec.kind {
            Kind::Info => "_info{",
            Kind::Gauge => "{",
        };
        for samples in domains.clone() {
            for line in samples.family(index).split_inclusive('\n') {
                out.write_str(spec.name)?;
                out.write_str(suffix)?;
                out.write_str(&samples.base)?;
                out.write_str(line)?;
            }
        }
    }
    Ok(())
}

/// Number of per-domain families.
pub const FAMILY_COUNT: usize = Family::ALL.len();
// A line's family is kept as a u8 while a domain is rendered.
const _: () = assert!(FAMILY_COUNT <= u8::MAX as usize);

/// Writes the header of family number `index` (in exposition order).
pub fn write_family_header<W: Write>(
    out: &mut W,
    format: Format,
    index: usize,
) -> std::fmt::Result {
    match Family::ALL.get(index) {
        Some(family) => write_header(out, format, &family.spec()),
        None => Ok(()),
    }
}

/// Writes one domain's lines of family number `index`. With [`write_family_header`] this writes
/// the exposition domain by domain into one sink per family (see `exporter::exposition`).
pub fn write_family_lines<W: Write>(
    out: &mut W,
    samples: &DomainSamples,
    index: usize,
) -> std::fmt::Result {
    let Some(family) = Family::ALL.get(index) else {
        return Ok(());
    };
    let spec = family.spec();
    let open = match spec.kind {
        Kind::Info => "_info{",
        Kind::Gauge => "{",
    };
    for line in samples.family(index).split_inclusive('\n') {
        out.write_str(spec.name)?;
        out.write_str(open)?;
        out.write_str(&samples.base)?;
        out.write_str(line)?;
    }
    Ok(())
}

/// A domain's samples packed for keeping: the line rests deflated from a dictionary (the rests
/// of an earlier domain: domains share their label names and most values), about a tenth of
/// their size.
#[derive(Debug, Default)]
pub struct PackedSamples {
    base: Box<str>,
    packed: Box<[u8]>,
    ends: [u32; FAMILY_COUNT],
    dictionary: Arc<[u8]>,
}

impl PackedSamples {
    /// Packs `samples` with `dictionary` (empty for none).
    pub fn pack(samples: DomainSamples, dictionary: Arc<[u8]>) -> std::io::Result<Self> {
        use std::io::Write as _;
        let mut writer = DeflateWriter::with_dictionary(Compression::new(6), &dictionary)?;
        writer.write_all(samples.tails.as_bytes())?;
        Ok(Self {
            base: samples.base,
            packed: writer.finished()?.bytes.into_boxed_slice(),
            ends: samples.ends,
            dictionary,
        })
    }

    /// The samples back.
    pub fn unpack(&self) -> std::io::Result<DomainSamples> {
        let tails = inflate(&self.packed, &self.dictionary)?;
        let tails = String::from_utf8(tails).map_err(std::io::Error::other)?;
        Ok(DomainSamples {
            base: self.base.clone(),
            tails: tails.into_boxed_str(),
            ends: self.ends,
        })
    }

    /// Bytes held (not counting the shared dictionary).
    pub fn len(&self) -> usize {
        self.base.len() + self.packed.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }
}

/// The line rests of `samples`, to serve as the dictionary of later domains' packed samples.
pub fn sample_dictionary(samples: &DomainSamples) -> Arc<[u8]> {
    Arc::from(samples.tails.as_bytes())
}

/// A `std::fmt::Write` over an `std::io::Write` (e.g. a compressor), keeping the first I/O error.
pub struct IoText<W: std::io::Write> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> IoText<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, error: None }
    }

    /// The writer back, or the first error a write met.
    pub fn into_inner(self) -> std::io::Result<W> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.inner),
        }
    }
}

impl<W: std::io::Write> Write for IoText<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.error.is_some() {
            return Err(std::fmt::Error);
        }
        self.inner.write_all(s.as_bytes()).map_err(|error| {
            self.error = Some(error);
            std::fmt::Error
        })
    }
}

/// Every per-domain metric name, as exposed (for documentation and tests).
pub fn metric_names() -> Vec<String> {
    Family::ALL
        .iter()
        .map(|f| f.spec())
        .map(|f| match f.kind {
            Kind::Gauge => f.name.to_owned(),
            Kind::Info => format!("{}_info", f.name),
        })
        .collect()
}

fn write_header<W: Write>(out: &mut W, format: Format, family: &FamilySpec) -> std::fmt::Result {
    let info = match family.kind {
        Kind::Info => "_info",
        Kind::Gauge => "",
    };
    let (suffix, kind) = match (format, family.kind) {
        (Format::Classic, Kind::Info) => (info, "gauge"),
        (Format::OpenMetrics, Kind::Info) => ("", "info"),
        (_, Kind::Gauge) => ("", "gauge"),
    };
    let name = family.name;
    writeln!(out, "# HELP {name}{suffix} {}", family.help)?;
    writeln!(out, "# TYPE {name}{suffix} {kind}")?;
    if let (Format::OpenMetrics, Some(unit)) = (format, family.unit) {
        writeln!(out, "# UNIT {name}{suffix} {unit}")?;
    }
    Ok(())
}

/// The rest of a sample line after the domain's labels: `,name="value"...} value\n`.
fn sample_tail(out: &mut String, labels: &[(&str, &str)], value: f64) {
    for (name, value) in labels {
        debug_assert!(
            RESERVED_LABELS.contains(name),
            "label {name} is missing from model::labels::RESERVED_LABELS"
        );
        out.push(',');
        push_label(out, name, value);
    }
    out.push_str("} ");
    push_value(out, value);
    out.push('\n');
}

fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    // Nearly every value (step names, statuses, host names, URLs) has nothing to escape.
    if value
        .bytes()
        .all(|b| b == b' ' || (b.is_ascii_graphic() && b != b'\\' && b != b'"'))
    {
        out.push_str(value);
        out.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            // A terminal showing the exposition must not obey what a certificate subject says.
            c if is_unsafe(c) => {
                let mut escaped = String::new();
                push_escaped(&mut escaped, c);
                out.push_str(&escaped.replace('\\', "\\\\"));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

fn bool_value(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut labels = BTreeMap::new();
        labels.insert(
            "customer".to_owned(),
            "A \"quoted\"\\back\nslash".to_owned(),
        );
        assert_eq!(
            domain_labels("a.example", &labels),
            "domain=\"a.example\",customer=\"A \\\"quoted\\\"\\\\back\\nslash\""
        );
    }

    #[test]
    fn plain_and_escaped_label_values_read_the_same() {
        let cases = [
            ("autodiscover.example.com", "autodiscover.example.com"),
            ("CN=*.example.com, O=Example", "CN=*.example.com, O=Example"),
            ("a\"b", "a\\\"b"),
            ("tab\there", "tab\\\\there"),
            ("bell\u{7}", "bell\\\\u{7}"),
            ("r\u{e9}sum\u{e9}", "r\u{e9}sum\u{e9}"),
            ("rtl\u{202e}txt", "rtl\\\\u{202e}txt"),
            ("", ""),
        ];
        for (value, escaped) in cases {
            let mut out = String::new();
            push_label(&mut out, "l", value);
            assert_eq!(out, format!("l=\"{escaped}\""), "{value:?}");
        }
    }

    #[test]
    fn lines_are_filed_by_family_in_writing_order() {
        let mut f = Lines::new();
        f.push(Family::StepStatus, &[("step", "a"), ("status", "x")], 1.0);
        f.push(Family::Success, &[], 1.0);
        f.push(Family::StepDuration, &[("step", "a")], 0.5);
        f.push(Family::StepStatus, &[("step", "b"), ("status", "y")], 1.0);
        f.push(Family::Outcome, &[("outcome", "ok")], 1.0);
        let samples = f.into_samples("domain=\"d\"");
        let family = |family: Family| samples.family(family as usize).to_owned();
        assert_eq!(family(Family::Success), "} 1\n");
        assert_eq!(family(Family::Outcome), ",outcome=\"ok\"} 1\n");
        assert_eq!(
            family(Family::StepStatus),
            ",step=\"a\",status=\"x\"} 1\n,step=\"b\",status=\"y\"} 1\n"
        );
        assert_eq!(family(Family::StepDuration), ",step=\"a\"} 0.5\n");
        assert_eq!(family(Family::SrvPresent), "");
        assert_eq!(samples.len(), "domain=\"d\"".len() + samples.tails.len());
    }

    #[test]
    fn values_are_formatted_like_prometheus() {
        let mut out = String::new();
        for v in [1.0, 0.0, -3.0, 0.25, 1.7e9, f64::NAN, f64::INFINITY] {
            push_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "1 0 -3 0.25 1700000000 NaN +Inf ");
    }

    #[test]
    fn metric_names_are_the_interface() {
        // SPEC §4: renaming one of these breaks dashboards, alerts and users' queries.
        assert_eq!(
            metric_names(),
            [
                "autodiscover_probe_success",
                "autodiscover_outcome",
                "autodiscover_step_reached",
                "autodiscover_step_status",
                "autodiscover_step_duration_seconds",
                "autodiscover_certificate_prompt",
                "autodiscover_certificate_name_mismatch",
                "autodiscover_redirect_prompt",
                "autodiscover_srv_record_present",
                "autodiscover_srv_record_info",
                "autodiscover_endpoint_info",
                "autodiscover_certificate_days_to_expiry",
                "autodiscover_certificate_not_after_timestamp_seconds",
                "autodiscover_certificate_info",
                "autodiscover_service_info",
                "autodiscover_service_status",
                "autodiscover_service_certificate_prompt",
                "autodiscover_probe_duration_seconds",
                "autodiscover_probe_timestamp_seconds",
                "autodiscover_probe_interval_seconds",
                "autodiscover_domain_nameservers_info",
                "autodiscover_domain_soa_serial",
                "autodiscover_domain_delegation_changed_timestamp_seconds",
                "autodiscover_regressed_after_delegation_change",
            ]
        );
    }

    #[test]
    fn accept_header_picks_the_format() {
        assert_eq!(Format::negotiate(None), Format::Classic);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Classic
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
    }
}
