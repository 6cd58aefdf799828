//! What changed between two probes of a domain, and whether a regression follows a change of
//! its DNS delegation. Pure: states in, changes and findings out.

use crate::model::finding::{Finding, FindingCode, Severity};
use crate::model::history::{
    Change, ChangeKind, DelegationChange, DomainMemory, DomainState, regressed_after,
};
use crate::model::report::ProbeReport;
use std::collections::BTreeMap;

/// The changes from `before` to `after`, seen at `at`, in timeline order (delegation first,
/// verdict last). Values unknown on either side are not compared.
pub fn changes(before: &DomainState, after: &DomainState, at: i64) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |kind: ChangeKind, subject: &str, old: String, new: String| {
        if old != new {
            out.push(Change {
                at,
                kind,
                subject: subject.to_owned(),
                before: old,
                after: new,
            });
        }
    };
    if let (Some(old), Some(new)) = (&before.nameservers, &after.nameservers) {
        push(ChangeKind::Nameservers, "", old.join(","), new.join(","));
    }
    if let (Some(old), Some(new)) = (before.soa_serial, after.soa_serial) {
        push(ChangeKind::SoaSerial, "", old.to_string(), new.to_string());
    }
    if let (Some(old), Some(new)) = (&before.soa_primary, &after.soa_primary) {
        push(ChangeKind::SoaPrimary, "", old.clone(), new.clone());
    }
    if let (Some(old), Some(new)) = (&before.srv, &after.srv) {
        push(ChangeKind::SrvRecords, "", old.join(", "), new.join(", "));
    }
    for (host, old, new) in common(&before.addresses, &after.addresses) {
        push(ChangeKind::Addresses, host, old.join(","), new.join(","));
    }
    for (host, old, new) in common(&before.certificates, &after.certificates) {
        // A host that stopped answering TLS shows up as a step status; only a different leaf
        // is a certificate change.
        if !old.is_empty() && !new.is_empty() {
            push(ChangeKind::Certificate, host, old.join(","), new.join(","));
        }
    }
    for (step, new) in &after.steps {
        if let Some(old) = before.steps.get(step) {
            push(
                ChangeKind::StepStatus,
                step.as_str(),
                old.as_str().to_owned(),
                new.as_str().to_owned(),
            );
        }
    }
    push(
        ChangeKind::Endpoint,
        "",
        before.endpoint.clone(),
        after.endpoint.clone(),
    );
    if let (Some(old), Some(new)) = (before.outcome, after.outcome) {
        push(
            ChangeKind::Verdict,
            "",
            old.as_str().to_owned(),
            new.as_str().to_owned(),
        );
    }
    out
}

fn common<'a>(
    before: &'a BTreeMap<String, Vec<String>>,
    after: &'a BTreeMap<String, Vec<String>>,
) -> impl Iterator<Item = (&'a str, &'a Vec<String>, &'a Vec<String>)> {
    after
        .iter()
        .filter_map(|(host, new)| before.get(host).map(|old| (host.as_str(), old, new)))
}

/// Moves a domain's memory on by one finished probe (finishing at `at`): the new memory and
/// the changes since the previous probe. The first probe of a domain records no change.
pub fn advance(
    previous: Option<&DomainMemory>,
    report: &ProbeReport,
    at: i64,
) -> (DomainMemory, Vec<Change>) {
    let state = DomainState::of(report);
    let Some(previous) = previous else {
        return (
            DomainMemory {
                state,
                ..DomainMemory::default()
            },
            Vec::new(),
        );
    };
    let found = changes(&previous.state, &state, at);
    let mut memory = DomainMemory {
        state,
        last_change_at: previous.last_change_at,
        delegation_change: previous.delegation_change.clone(),
    };
    if !found.is_empty() {
        memory.last_change_at = Some(at);
    }
    if let Some(ns) = found.iter().find(|c| c.kind == ChangeKind::Nameservers) {
        memory.delegation_change = Some(DelegationChange {
            at,
            before: ns.before.clone(),
            after: ns.after.clone(),
            outcome_before: previous.state.outcome,
        });
    }
    (memory, found)
}

/// A finding when the domain got worse within 7 days of a change of its name servers.
pub fn regression_finding(
    memory: &DomainMemory,
    report: &ProbeReport,
    now: i64,
) -> Option<Finding> {
    let change = memory.delegation_change.as_ref()?;
    let before = regressed_after(change, report.outcome, now)?;
    let domain = report.domain.display();
    let when = crate::model::finding::date(change.at);
    Some(Finding {
        severity: Severity::Error,
        code: FindingCode::RegressedAfterDelegationChange,
        message: format!(
            "{domain} got worse after its DNS delegation changed on {when} (name servers {} → {}): \
             the verdict was {} before the change and is {} now.",
            or_none(&change.before),
            or_none(&change.after),
            before.as_str(),
            report.outcome.as_str()
        ),
        hint: format!(
            "A DNS provider change often loses records. Compare the zone at the new provider ({}) \
             with the old one: the SRV record _autodiscover._tcp.{domain}, the autodiscover host, \
             and the address of {domain} itself. The timeline on the status page lists what changed.",
            or_none(&change.after)
        ),
    })
}

fn or_none(text: &str) -> &str {
    if text.is_empty() { "none" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::step::{Outcome, StepId, StepStatus};

    fn state() -> DomainState {
        let mut state = DomainState {
            outcome: Some(Outcome::RedirectPrompt),
            endpoint: "srv_record https://mail.companya.example/Autodiscover/Autodiscover.xml"
                .into(),
            srv: Some(vec!["0 0 443 mail.companya.example".into()]),
            nameservers: Some(vec![
                "ns1.old-dns.example".into(),
                "ns2.old-dns.example".into(),
            ]),
            soa_serial: Some(2024010101),
            soa_primary: Some("ns1.old-dns.example".into()),
            ..DomainState::default()
        };
        state
            .steps
            .insert(StepId::RootDomain, StepStatus::DnsNoRecord);
        state
            .steps
            .insert(StepId::SrvRecord, StepStatus::EndpointFound);
        state
            .addresses
            .insert("mail.companya.example".into(), vec!["203.0.113.10".into()]);
        state
            .certificates
            .insert("mail.companya.example".into(), vec!["aa".repeat(32)]);
        state
    }

    #[test]
    fn each_kind_of_change_is_found_with_before_and_after() {
        type Edit = fn(&mut DomainState);
        let table: &[(&str, Edit, ChangeKind, &str, &str, &str)] = &[
            (
                "NS set",
                |s| s.nameservers = Some(vec!["ns1.new-dns.example".into()]),
                ChangeKind::Nameservers,
                "",
                "ns1.old-dns.example,ns2.old-dns.example",
                "ns1.new-dns.example",
            ),
            (
                "SOA serial",
                |s| s.soa_serial = Some(2024010102),
                ChangeKind::SoaSerial,
                "",
                "2024010101",
                "2024010102",
            ),
            (
                "SOA primary",
                |s| s.soa_primary = Some("ns1.new-dns.example".into()),
                ChangeKind::SoaPrimary,
                "",
                "ns1.old-dns.example",
                "ns1.new-dns.example",
            ),
            (
                "SRV lost",
                |s| s.srv = Some(vec![]),
                ChangeKind::SrvRecords,
                "",
                "0 0 443 mail.companya.example",
                "",
            ),
            (
                "addresses",
                |s| {
                    s.addresses
                        .insert("mail.companya.example".into(), vec!["203.0.113.11".into()]);
                },
                ChangeKind::Addresses,
                "mail.companya.example",
                "203.0.113.10",
                "203.0.113.11",
            ),
            (
                "certificate",
                |s| {
                    s.certificates
                        .insert("mail.companya.example".into(), vec!["bb".repeat(32)]);
                },
                ChangeKind::Certificate,
                "mail.companya.example",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            ),
            (
                "step status",
                |s| {
                    s.steps.insert(StepId::SrvRecord, StepStatus::DnsNoRecord);
                },
                ChangeKind::StepStatus,
                "srv_record",
                "endpoint_found",
                "dns_no_record",
            ),
            (
                "endpoint",
                |s| s.endpoint = String::new(),
                ChangeKind::Endpoint,
                "",
                "srv_record https://mail.companya.example/Autodiscover/Autodiscover.xml",
                "",
            ),
            (
                "verdict",
                |s| s.outcome = Some(Outcome::NotFound),
                ChangeKind::Verdict,
                "",
                "redirect_prompt",
                "not_found",
            ),
        ];
        for (name, edit, kind, subject, before, after) in table {
            let old = state();
            let mut new = state();
            edit(&mut new);
            let found = changes(&old, &new, 100);
            assert_eq!(
                found,
                vec![Change {
                    at: 100,
                    kind: *kind,
                    subject: (*subject).into(),
                    before: (*before).into(),
                    after: (*after).into(),
                }],
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_values_are_not_changes() {
        let old = state();
        type Edit = fn(&mut DomainState);
        let table: &[(&str, Edit)] = &[
            ("NS lookup failed", |s| s.nameservers = None),
            ("SOA lookup failed", |s| {
                s.soa_serial = None;
                s.soa_primary = None;
            }),
            ("SRV lookup failed", |s| s.srv = None),
            ("host not resolved this time", |s| s.addresses.clear()),
            ("no TLS this time", |s| {
                s.certificates
                    .insert("mail.companya.example".into(), Vec::new());
            }),
            ("first probe has no outcome before", |_| {}),
        ];
        for (name, edit) in table {
            let mut new = state();
            edit(&mut new);
            assert_eq!(changes(&old, &new, 1), vec![], "{name}");
            assert_eq!(changes(&new, &old, 1), vec![], "{name} (reverse)");
        }
    }

    #[test]
    fn the_seed_story_in_one_probe_is_listed_delegation_first_verdict_last() {
        let old = state();
        let mut new = state();
        new.nameservers = Some(vec!["ns1.new-dns.example".into()]);
        new.srv = Some(vec![]);
        new.steps.insert(StepId::SrvRecord, StepStatus::DnsNoRecord);
        new.endpoint.clear();
        new.outcome = Some(Outcome::NotFound);
        let kinds: Vec<ChangeKind> = changes(&old, &new, 5).iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Nameservers,
                ChangeKind::SrvRecords,
                ChangeKind::StepStatus,
                ChangeKind::Endpoint,
                ChangeKind::Verdict
            ]
        );
    }

    fn report(outcome: Outcome, nameservers: &[&str]) -> ProbeReport {
        use crate::model::address::MailAddress;
        use crate::model::facts::{Delegation, DnsAnswer};
        let address = MailAddress::parse("someone@companyc.example").unwrap();
        ProbeReport {
            domain: address.domain().clone(),
            address,
            outcome,
            endpoint: None,
            certificate_prompts: Vec::new(),
            redirect_prompt: false,
            srv: Default::default(),
            steps: Vec::new(),
            redirects: Vec::new(),
            restarted: Vec::new(),
            settings: None,
            settings_source: None,
            services: Vec::new(),
            service_certificate_prompts: Vec::new(),
            credentials: None,
            findings: Vec::new(),
            resolver: "test".into(),
            delegation: Some(Delegation {
                ns_answer: DnsAnswer::Records {
                    count: nameservers.len(),
                },
                nameservers: nameservers.iter().map(|n| (*n).to_owned()).collect(),
                soa_answer: DnsAnswer::NoData,
                soa: None,
                duration_seconds: 0.0,
            }),
            started_at: 0,
            duration_seconds: 0.0,
        }
    }

    #[test]
    fn a_regression_after_a_delegation_change_is_linked_to_it_for_7_days() {
        let day = 24 * 3600;
        let old = ["ns1.old-dns.example"];
        let new = ["ns1.new-dns.example"];
        let (memory, found) = advance(None, &report(Outcome::RedirectPrompt, &old), 0);
        assert!(
            found.is_empty(),
            "the first probe has nothing to compare with"
        );
        // The provider changes; the verdict stays for now.
        let (memory, found) = advance(Some(&memory), &report(Outcome::RedirectPrompt, &new), 100);
        assert_eq!(found.len(), 1);
        assert_eq!(memory.last_change_at, Some(100));
        let change = memory.delegation_change.clone().unwrap();
        assert_eq!(
            (change.at, change.before.as_str(), change.after.as_str()),
            (100, "ns1.old-dns.example", "ns1.new-dns.example")
        );
        assert_eq!(change.outcome_before, Some(Outcome::RedirectPrompt));
        let same = report(Outcome::RedirectPrompt, &new);
        assert_eq!(
            regression_finding(&memory, &same, 200),
            None,
            "no worse yet"
        );
        // Five minutes later the SRV record is gone: worse than before the change.
        let worse = report(Outcome::NotFound, &new);
        let (memory, found) = advance(Some(&memory), &worse, 400);
        assert_eq!(found.len(), 1, "only the verdict changed: {found:?}");
        assert_eq!(memory.delegation_change, Some(change));
        let finding = regression_finding(&memory, &worse, 400).unwrap();
        assert_eq!(finding.code, FindingCode::RegressedAfterDelegationChange);
        assert!(
            finding.message.contains("redirect_prompt"),
            "{}",
            finding.message
        );
        assert!(
            finding.message.contains("ns1.new-dns.example"),
            "{}",
            finding.message
        );
        assert!(regression_finding(&memory, &worse, 100 + 7 * day).is_some());
        assert_eq!(regression_finding(&memory, &worse, 101 + 7 * day), None);
        // Better than before the change: no finding.
        let better = report(Outcome::Ok, &new);
        assert_eq!(regression_finding(&memory, &better, 500), None);
    }

    #[test]
    fn a_domain_already_bad_before_the_change_is_not_a_regression() {
        let (memory, _) = advance(None, &report(Outcome::NotFound, &["a.example"]), 0);
        let now = report(Outcome::NotFound, &["b.example"]);
        let (memory, _) = advance(Some(&memory), &now, 10);
        assert!(memory.delegation_change.is_some());
        assert_eq!(regression_finding(&memory, &now, 20), None);
    }

    #[test]
    fn descriptions_read_like_a_timeline() {
        let change = |kind, subject: &str, before: &str, after: &str| Change {
            at: 0,
            kind,
            subject: subject.into(),
            before: before.into(),
            after: after.into(),
        };
        assert_eq!(
            change(
                ChangeKind::Nameservers,
                "",
                "ns1.old-dns.example",
                "ns1.new-dns.example"
            )
            .describe(),
            "NS changed from ns1.old-dns.example to ns1.new-dns.example"
        );
        assert_eq!(
            change(ChangeKind::SrvRecords, "", "0 0 443 mail.a.example", "").describe(),
            "SRV record lost (was 0 0 443 mail.a.example)"
        );
        assert_eq!(
            change(ChangeKind::Verdict, "", "ok", "certificate_prompt").describe(),
            "verdict ok → certificate_prompt"
        );
        assert_eq!(
            change(ChangeKind::Endpoint, "", "", "srv_record https://x").describe(),
            "endpoint none → srv_record https://x"
        );
    }
}
