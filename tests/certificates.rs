//! Certificate judgements against certificates from the lab's PKI: wildcards, exact names,
//! common names, and name / trust / time judged independently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use autodiscover_exporter::lab::pki::{TestCa, Validity as Lifetime};
use autodiscover_exporter::model::facts::{CertificateFacts, CertificateVerdict, Validity};
use autodiscover_exporter::net::certificate::{FactsMemo, TrustMemo, facts, judge, judge_with};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

fn verdict_for(
    chain: &[CertificateDer<'static>],
    roots: &RootCertStore,
    host: &str,
) -> CertificateVerdict {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let now = autodiscover_exporter::net::tls::unix_now();
    let all: Vec<CertificateFacts> = chain.iter().map(|c| facts(c.as_ref(), now)).collect();
    // The memo of facts gives the same facts, read (first) or remembered (second).
    let facts_memo = FactsMemo::default();
    for _ in 0..2 {
        let remembered: Vec<CertificateFacts> = chain
            .iter()
            .map(|c| facts_memo.facts(c.as_ref(), now))
            .collect();
        assert_eq!(remembered, all);
    }
    let verdict = judge(chain, &all, host, roots, &provider, now).unwrap();
    // The memo of chain trust gives the same verdict, verified (first) or remembered (second).
    let memo = TrustMemo::default();
    for _ in 0..2 {
        let remembered = judge_with(chain, &all, host, now, |chain, facts| {
            memo.trust(chain, facts, roots, &provider, now)
        });
        assert_eq!(remembered.as_ref(), Some(&verdict));
    }
    verdict
}

fn ca_and_roots() -> (TestCa, RootCertStore) {
    let ca = TestCa::new("Name Test CA").unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (ca, roots)
}

#[test]
fn wildcards_cover_one_left_most_label_only() {
    let (ca, roots) = ca_and_roots();
    let id = ca
        .issue(&["*.companyb.example"], Lifetime::ValidFor { days: 90 })
        .unwrap();
    assert!(verdict_for(&id.chain, &roots, "autodiscover.companyb.example").name_matches);
    assert!(verdict_for(&id.chain, &roots, "AutoDiscover.CompanyB.Example").name_matches);
    assert!(
        !verdict_for(&id.chain, &roots, "companyb.example").name_matches,
        "bare domain"
    );
    assert!(
        !verdict_for(&id.chain, &roots, "a.b.companyb.example").name_matches,
        "two labels"
    );
    assert!(!verdict_for(&id.chain, &roots, "autodiscover.companyc.example").name_matches);
}

#[test]
fn exact_names_and_the_seed_typo() {
    let (ca, roots) = ca_and_roots();
    // the seed's certificate: "autdiscover" is misspelt, so autodiscover.companya is not covered
    let id = ca
        .issue(
            &[
                "webmail.companya.com",
                "www.webmail.companya.com",
                "corp-sbs.local",
                "autdiscover.companya.com",
            ],
            Lifetime::ValidFor { days: 90 },
        )
        .unwrap();
    assert!(verdict_for(&id.chain, &roots, "webmail.companya.com").name_matches);
    assert!(!verdict_for(&id.chain, &roots, "autodiscover.companya.com").name_matches);
    assert!(!verdict_for(&id.chain, &roots, "companyb.com").name_matches);
    let leaf = facts(id.chain[0].as_ref(), 0);
    assert_eq!(leaf.internal_names(), vec!["corp-sbs.local".to_owned()]);
}

#[test]
fn a_common_name_without_san_never_matches() {
    let (_, roots) = ca_and_roots();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "autodiscover.companyb.example");
    params.distinguished_name = dn;
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let verdict = verdict_for(
        &[cert.der().clone()],
        &roots,
        "autodiscover.companyb.example",
    );
    assert!(!verdict.name_matches);
    assert!(!verdict.trusted);
}

#[test]
fn checks_are_independent() {
    let (ca, roots) = ca_and_roots();
    let expired = ca
        .issue(&["www.companyb.example"], Lifetime::Expired { days_ago: 3 })
        .unwrap();
    let verdict = verdict_for(&expired.chain, &roots, "companyb.example");
    assert!(!verdict.name_matches);
    assert!(
        verdict.trusted,
        "expiry must not hide trust: {:?}",
        verdict.trust_error
    );
    assert_eq!(verdict.validity, Validity::Expired);
    assert_eq!(
        verdict.problem(),
        Some(autodiscover_exporter::model::step::StepStatus::CertNameMismatch)
    );

    let future = ca
        .issue(&["a.example"], Lifetime::NotYetValid { days: 3 })
        .unwrap();
    assert_eq!(
        verdict_for(&future.chain, &roots, "a.example").validity,
        Validity::NotYetValid
    );

    // an old, expired leaf served under a re-issued intermediate: no moment suits both
    let reissued = ca
        .intermediate(
            "Reissued Intermediate",
            Lifetime::Window {
                from_days: -100,
                to_days: 1000,
            },
        )
        .unwrap();
    let old = reissued
        .issue(
            &["old.example"],
            Lifetime::Window {
                from_days: -800,
                to_days: -400,
            },
        )
        .unwrap();
    let verdict = verdict_for(&old.chain, &roots, "old.example");
    assert!(verdict.trusted, "{:?}", verdict.trust_error);
    assert_eq!(verdict.validity, Validity::Expired);
    assert_eq!(
        verdict.problem(),
        Some(autodiscover_exporter::model::step::StepStatus::CertExpired)
    );

    // a current leaf under an expired intermediate fails today
    let lapsed = ca
        .intermediate(
            "Lapsed Intermediate",
            Lifetime::Window {
                from_days: -1000,
                to_days: -10,
            },
        )
        .unwrap();
    let current = lapsed
        .issue(
            &["current.example"],
            Lifetime::Window {
                from_days: -500,
                to_days: 300,
            },
        )
        .unwrap();
    let verdict = verdict_for(&current.chain, &roots, "current.example");
    assert!(verdict.trusted, "{:?}", verdict.trust_error);
    assert_eq!(verdict.validity, Validity::Expired);
    assert!(
        verdict
            .validity_error
            .as_deref()
            .unwrap()
            .contains("issuing certificate")
    );

    // an intermediate from another CA stays untrusted whatever the dates
    let foreign_root = TestCa::new("Foreign Root").unwrap();
    let foreign_mid = foreign_root
        .intermediate("Foreign Intermediate", Lifetime::ValidFor { days: 100 })
        .unwrap();
    let stray = foreign_mid
        .issue(&["a.example"], Lifetime::Expired { days_ago: 5 })
        .unwrap();
    let verdict = verdict_for(&stray.chain, &roots, "a.example");
    assert!(!verdict.trusted);
    assert_eq!(verdict.validity, Validity::Expired);

    let foreign = TestCa::new("Other CA")
        .unwrap()
        .issue(&["a.example"], Lifetime::ValidFor { days: 9 })
        .unwrap();
    let verdict = verdict_for(&foreign.chain, &roots, "a.example");
    assert!(verdict.name_matches && !verdict.trusted);
    assert!(verdict.trust_error.is_some());
}

#[test]
fn a_leaf_only_x509_parser_cannot_read_is_not_expired_in_1970() {
    let (ca, roots) = ca_and_roots();
    let identity = ca
        .issue(&["mail.example"], Lifetime::ValidFor { days: 30 })
        .unwrap();
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let now = autodiscover_exporter::net::tls::unix_now();
    let chain = &identity.chain[..1];
    let unreadable = vec![facts(b"\x30\x03\x02\x01\x01", now)];
    assert!(unreadable[0].parse_error.is_some());
    let verdict = judge(chain, &unreadable, "mail.example", &roots, &provider, now).unwrap();
    assert_eq!(verdict.validity, Validity::Valid, "{verdict:?}");
    assert!(verdict.is_valid(), "{verdict:?}");
    let garbage = [CertificateDer::from(b"garbage".to_vec())];
    let verdict = judge(
        &garbage,
        &unreadable,
        "mail.example",
        &roots,
        &provider,
        now,
    )
    .unwrap();
    assert_ne!(verdict.validity, Validity::Expired);
    assert!(!verdict.name_matches && !verdict.trusted);
}
