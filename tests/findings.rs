//! What each simulated situation must explain: the finding codes a probe of every catalogue
//! domain yields (facts gathered from real servers in the lab, then `diagnose::explain`).

mod support;

use autodiscover_exporter::model::finding::Severity;
use autodiscover_exporter::render::trace::{self, Colour};
use std::collections::BTreeSet;

/// Domain, codes that must be present, codes that must be absent.
type Case = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const CASES: &[Case] = &[
    (
        "companya.example",
        &["certificate_internal_name"],
        &["no_autodiscover"],
    ),
    (
        "companyb.example",
        &["certificate_name_mismatch", "redirect_prompt"],
        &["no_autodiscover"],
    ),
    (
        "companyc.example",
        &["redirect_prompt"],
        &["certificate_name_mismatch"],
    ),
    (
        "expired.example",
        &[
            "certificate_expired",
            "exchange_behind_certificate_prompt",
            "no_autodiscover",
        ],
        &["certificate_name_mismatch"],
    ),
    (
        "selfsigned.example",
        &["certificate_untrusted", "no_autodiscover"],
        &["certificate_expired"],
    ),
    (
        "expiring.example",
        &["certificate_expiring"],
        &["no_autodiscover"],
    ),
    (
        "insecure.example",
        &["redirect_refused", "no_autodiscover"],
        &[],
    ),
    (
        "srvport.example",
        &["srv_port_ignored", "no_autodiscover"],
        &[],
    ),
    ("srvdot.example", &["srv_no_service"], &[]),
    ("split.example", &["addresses_disagree"], &[]),
    ("huge.example", &["response_too_large"], &[]),
    ("basic.example", &["password_prompt_unknown_server"], &[]),
    ("blackhole.example", &["step_timeout"], &[]),
    (
        "cloud.example",
        &["classic_clients_affected", "certificate_name_mismatch"],
        &["no_autodiscover", "autodiscover_not_microsoft365"],
    ),
    (
        "hybridm365.example",
        &["classic_clients_affected"],
        &["no_autodiscover"],
    ),
    (
        "leafonly.example",
        &["certificate_chain_incomplete"],
        &["certificate_untrusted"],
    ),
    (
        "leafnoaia.example",
        &["certificate_untrusted", "no_autodiscover"],
        &["certificate_chain_incomplete"],
    ),
];

#[tokio::test]
async fn every_situation_is_explained() {
    let (_world, prober) = support::world().await;
    let mut failures = Vec::new();
    for (domain, present, absent) in CASES {
        let report = support::probe(&prober, domain).await;
        let codes: BTreeSet<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
        for code in *present {
            if !codes.contains(code) {
                failures.push(format!("{domain}: missing {code} (has {codes:?})"));
            }
        }
        for code in *absent {
            if codes.contains(code) {
                failures.push(format!("{domain}: unexpected {code}"));
            }
        }
        let sorted = report
            .findings
            .windows(2)
            .all(|w| w[0].severity <= w[1].severity);
        if !sorted {
            failures.push(format!("{domain}: findings not worst first"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_certificate_failure_is_explained_by_its_certificate_not_by_publishing() {
    let (_world, prober) = support::world().await;
    let report = support::probe(&prober, "expired.example").await;
    let none = report
        .findings
        .iter()
        .find(|f| f.code.as_str() == "no_autodiscover")
        .unwrap();
    assert!(!none.hint.contains("Publish"), "{}", none.hint);
    assert!(none.hint.contains("certificate"), "{}", none.hint);
}

#[tokio::test]
async fn repeated_dns_failures_are_one_finding() {
    let (_world, prober) = support::world().await;
    // The lab's DNS server refuses names outside its zones.
    let report = support::probe(&prober, "unserved.test").await;
    let failures: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code.as_str() == "dns_failure")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(failures[0].message.contains("autodiscover.unserved.test A"));
    assert_eq!(failures[0].severity, Severity::Warning);
}

#[tokio::test]
async fn the_trace_names_the_resolver_every_step_and_the_verdict() {
    let (world, prober) = support::world().await;
    let report = support::probe(&prober, "companyb.example").await;
    let text = trace::render(&report, Colour::Off);
    let resolver = format!("Resolver: {}", world.nameserver());
    for line in [
        "Autodiscover for someone@companyb.example",
        resolver.as_str(),
        "Verdict:  CERTIFICATE_PROMPT",
        "5. microsoft365 - Microsoft 365 (Direct Connect)  [http_status]",
        "1. root_domain - HTTPS on the mail domain  [cert_name_mismatch]",
        "4. srv_record - DNS SRV record  [endpoint_found]",
        "name FAIL | trust ok | dates ok",
        "ERROR   certificate_name_mismatch",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Steps appear in Outlook's order: Microsoft 365 first.
    let m365 = text.find("5. microsoft365").unwrap();
    let root = text.find("1. root_domain").unwrap();
    assert!(m365 < root);
}
