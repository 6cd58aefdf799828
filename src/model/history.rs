//! What changed for a domain, and when: the vocabulary of the history. `diagnose::changes`
//! computes changes from two states; the exporter stores them; the pages and JSON show them.

use super::facts::DnsAnswer;
use super::report::{Endpoint, ProbeReport};
use super::step::{Outcome, StepId, StepStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A regression counts as caused by a delegation change within this long after it.
pub const DELEGATION_REGRESSION_WINDOW_SECONDS: i64 = 7 * 24 * 3600;

/// What about a domain changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The NS set of the domain.
    Nameservers,
    /// The SOA serial (the zone was edited).
    SoaSerial,
    /// The SOA primary name server.
    SoaPrimary,
    /// The SRV records of `_autodiscover._tcp`.
    SrvRecords,
    /// The addresses a host resolves to.
    Addresses,
    /// The leaf certificate a host presents.
    Certificate,
    /// The status of one step.
    StepStatus,
    /// Where Outlook finds its endpoint.
    Endpoint,
    /// The verdict.
    Verdict,
}

impl ChangeKind {
    /// Every kind, in the order a timeline lists the changes of one probe.
    pub const ALL: [Self; 9] = [
        Self::Nameservers,
        Self::SoaSerial,
        Self::SoaPrimary,
        Self::SrvRecords,
        Self::Addresses,
        Self::Certificate,
        Self::StepStatus,
        Self::Endpoint,
        Self::Verdict,
    ];

    /// The name as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nameservers => "nameservers",
            Self::SoaSerial => "soa_serial",
            Self::SoaPrimary => "soa_primary",
            Self::SrvRecords => "srv_records",
            Self::Addresses => "addresses",
            Self::Certificate => "certificate",
            Self::StepStatus => "step_status",
            Self::Endpoint => "endpoint",
            Self::Verdict => "verdict",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The change is part of the domain's delegation (NS set, SOA).
    pub fn is_delegation(self) -> bool {
        matches!(self, Self::Nameservers | Self::SoaSerial | Self::SoaPrimary)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change, with the value before and after. Empty text means "none".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// When the probe that saw it finished, Unix seconds.
    pub at: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// Which one: the step, the host; empty for domain-wide values.
    pub subject: String,
    /// The value before.
    pub before: String,
    /// The value after.
    pub after: String,
}

impl Change {
    /// One line for logs and timelines, e.g. "NS changed from a to b".
    pub fn describe(&self) -> String {
        let value = |v: &str| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.to_owned()
            }
        };
        let (before, after) = (value(&self.before), value(&self.after));
        match self.kind {
            ChangeKind::Nameservers => format!("NS changed from {before} to {after}"),
            ChangeKind::SoaSerial => format!("SOA serial {before} → {after}"),
            ChangeKind::SoaPrimary => format!("SOA primary server {before} → {after}"),
            ChangeKind::SrvRecords if self.after.is_empty() => {
                format!("SRV record lost (was {before})")
            }
            ChangeKind::SrvRecords if self.before.is_empty() => {
                format!("SRV record appeared: {after}")
            }
            ChangeKind::SrvRecords => format!("SRV records {before} → {after}"),
            ChangeKind::Addresses => {
                format!("addresses of {} {before} → {after}", self.subject)
            }
            ChangeKind::Certificate => format!(
                "certificate of {} changed (sha256 {} → {})",
                self.subject,
                short(&before),
                short(&after)
            ),
            ChangeKind::StepStatus => format!("{} {before} → {after}", self.subject),
            ChangeKind::Endpoint => format!("endpoint {before} → {after}"),
            ChangeKind::Verdict => format!("verdict {before} → {after}"),
        }
    }
}

fn short(fingerprints: &str) -> String {
    fingerprints
        .split(',')
        .map(|f| f.get(..12).unwrap_or(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// What a domain looked like after one probe: the values whose changes the history records.
/// A value the probe could not establish (a DNS timeout, say) is absent, so a passing failure
/// does not show up as "record lost" and back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainState {
    /// The verdict.
    pub outcome: Option<Outcome>,
    /// The endpoint as `step url`, empty for none.
    pub endpoint: String,
    /// Each step's status.
    pub steps: BTreeMap<StepId, StepStatus>,
    /// SRV records as `priority weight port target`, sorted; absent when the lookup failed.
    #[serde(default)]
    pub srv: Option<Vec<String>>,
    /// Addresses per host whose lookup got an answer (records, NXDOMAIN or NODATA), sorted.
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<String>>,
    /// SHA-256 fingerprints of the leaf certificates per host, sorted.
    #[serde(default)]
    pub certificates: BTreeMap<String, Vec<String>>,
    /// The NS set, sorted; absent when unknown.
    #[serde(default)]
    pub nameservers: Option<Vec<String>>,
    /// The SOA serial; absent when unknown.
    #[serde(default)]
    pub soa_serial: Option<u32>,
    /// The SOA primary; absent when unknown.
    #[serde(default)]
    pub soa_primary: Option<String>,
}

impl DomainState {
    /// The state a report shows (its first discovery: the configured domain's own steps).
    pub fn of(report: &ProbeReport) -> Self {
        let mut state = Self {
            outcome: Some(report.outcome),
            endpoint: report
                .endpoint
                .as_ref()
                .map(endpoint_text)
                .unwrap_or_default(),
            ..Self::default()
        };
        for step in &report.steps {
            state.steps.insert(step.step, step.status);
            if let Some(srv) = &step.srv
                && definitive(&srv.answer)
            {
                let mut records: Vec<String> = srv
                    .records
                    .iter()
                    .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
                    .collect();
                records.sort();
                state.srv = Some(records);
            }
            for hop in &step.hops {
                if let Some(lookup) = &hop.lookup
                    && definitive(&lookup.a)
                    && definitive(&lookup.aaaa)
                {
                    let mut addresses: Vec<String> =
                        lookup.addresses.iter().map(ToString::to_string).collect();
                    addresses.sort();
                    addresses.dedup();
                    state.addresses.insert(lookup.host.clone(), addresses);
                }
                for attempt in &hop.addresses {
                    if let Some(leaf) = attempt.tls.as_ref().and_then(|t| t.leaf()) {
                        let list = state
                            .certificates
                            .entry(hop.host().into_owned())
                            .or_default();
                        if !list.contains(&leaf.fingerprint_sha256) {
                            list.push(leaf.fingerprint_sha256.clone());
                            list.sort();
                        }
                    }
                }
            }
        }
        if let Some(delegation) = &report.delegation {
            if delegation.nameservers_known() {
                state.nameservers = Some(delegation.nameservers.clone());
            }
            if let Some(soa) = &delegation.soa {
                state.soa_serial = Some(soa.serial);
                state.soa_primary = Some(soa.primary.clone());
            }
        }
        state
    }
}

/// The endpoint as the history shows it.
pub fn endpoint_text(endpoint: &Endpoint) -> String {
    format!("{} {}", endpoint.step.as_str(), endpoint.url)
}

/// The server answered (records, or a clear "no such records"), as opposed to failing.
fn definitive(answer: &DnsAnswer) -> bool {
    matches!(answer, DnsAnswer::Records { .. }) || answer.is_negative()
}

/// What the history remembers about a domain between probes (and restarts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainMemory {
    /// The state after the latest probe.
    pub state: DomainState,
    /// When anything last changed, Unix seconds.
    #[serde(default)]
    pub last_change_at: Option<i64>,
    /// The latest delegation change.
    #[serde(default)]
    pub delegation_change: Option<DelegationChange>,
}

/// A change of the domain's NS set, remembered to link later regressions to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationChange {
    /// When it was seen, Unix seconds.
    pub at: i64,
    /// The NS set before.
    pub before: String,
    /// The NS set after.
    pub after: String,
    /// The verdict just before the change.
    pub outcome_before: Option<Outcome>,
}

/// A domain got worse within the window after a delegation change: the verdict before the
/// change was better than the current one.
pub fn regressed_after(change: &DelegationChange, current: Outcome, now: i64) -> Option<Outcome> {
    let before = change.outcome_before?;
    let recent = now - change.at <= DELEGATION_REGRESSION_WINDOW_SECONDS;
    // Outcomes are ordered worst first.
    (recent && current < before).then_some(before)
}
