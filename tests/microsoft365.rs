//! Politeness toward Microsoft 365: cached answers, throttling honoured, and a throttled or
//! unreachable service never changes a verdict (the last known answer is reused).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use autodiscover_exporter::diagnose::{self, Expectations};
use autodiscover_exporter::lab::pki::Validity;
use autodiscover_exporter::lab::site::Behaviour;
use autodiscover_exporter::lab::world::WorldBuilder;
use autodiscover_exporter::model::address::MailAddress;
use autodiscover_exporter::model::facts::{Microsoft365Answer, QuerySource};
use autodiscover_exporter::model::report::ProbeReport;
use autodiscover_exporter::model::step::{Outcome, StepId};
use autodiscover_exporter::probe::Prober;
use autodiscover_exporter::probe::microsoft365::{Microsoft365Client, Microsoft365Settings};
use std::sync::Arc;
use std::time::Duration;

async fn probe(prober: &Prober, address: &str) -> ProbeReport {
    let address = MailAddress::parse(address).unwrap();
    let mut report = prober.probe(&address, &support::fast_options()).await;
    report.findings = diagnose::explain(&report, &Expectations::default());
    report
}

fn query(report: &ProbeReport) -> (QuerySource, Option<Microsoft365Answer>) {
    let query = report
        .step(StepId::Microsoft365)
        .unwrap()
        .microsoft365
        .clone()
        .unwrap();
    (query.source, query.answer)
}

/// A world whose Microsoft 365 throttles every query, with the cloud tenant's classic records
/// (a web site certificate on the bare domain: a prompt for classic clients).
async fn throttling_world() -> autodiscover_exporter::lab::world::World {
    let mut w = WorldBuilder::new().unwrap();
    let microsoft = w
        .ca()
        .issue(&["outlook.office365.com"], Validity::ValidFor { days: 365 })
        .unwrap();
    w.https(
        "203.0.113.60",
        microsoft,
        Behaviour::Microsoft365Throttling { retry_after: 120 },
    );
    w.zone("office365.com", "outlook A 203.0.113.60");
    let site = w
        .ca()
        .issue(&["www.cloud.example"], Validity::ValidFor { days: 365 })
        .unwrap();
    w.https("198.51.100.60", site, Behaviour::WebSite);
    w.zone("cloud.example", "@ A 198.51.100.60");
    w.start().await.unwrap()
}

#[tokio::test]
async fn answers_are_cached_per_address() {
    let (_world, prober) = support::world().await;
    let first = probe(&prober, "someone@cloud.example").await;
    assert_eq!(first.outcome, Outcome::Ok);
    assert_eq!(query(&first).0, QuerySource::Queried);
    let second = probe(&prober, "someone@cloud.example").await;
    assert_eq!(query(&second).0, QuerySource::Cached);
    assert_eq!(second.outcome, Outcome::Ok);
    let counts = prober.microsoft365().counts();
    assert!(counts.contains(&(QuerySource::Queried, 1)), "{counts:?}");
    assert!(counts.contains(&(QuerySource::Cached, 1)), "{counts:?}");
}

#[tokio::test]
async fn throttling_reuses_the_last_known_answer_and_pauses_every_query() {
    // Answers are never fresh, so every probe asks; the first world answers, the second throttles.
    let client = Arc::new(Microsoft365Client::new(Microsoft365Settings {
        cache_ttl: Duration::ZERO,
        ..Microsoft365Settings::default()
    }));
    let (world, _) = support::world().await;
    let answering = world.prober().unwrap().with_microsoft365(client.clone());
    let before = probe(&answering, "someone@cloud.example").await;
    assert_eq!(before.outcome, Outcome::Ok);
    assert_eq!(query(&before).0, QuerySource::Queried);

    let throttling = throttling_world().await;
    let prober = throttling
        .prober()
        .unwrap()
        .with_microsoft365(client.clone());
    let during = probe(&prober, "someone@cloud.example").await;
    let (source, answer) = query(&during);
    assert_eq!(source, QuerySource::Throttled);
    assert!(matches!(answer, Some(Microsoft365Answer::Known { .. })));
    assert_eq!(
        during.endpoint.as_ref().map(|e| e.step),
        Some(StepId::Microsoft365),
        "throttling must not change the verdict: {:?}",
        during.outcome
    );
    // Retry-After pauses the following queries: they are not sent at all.
    let paused = probe(&prober, "other@cloud.example").await;
    assert_eq!(query(&paused).0, QuerySource::Throttled);
    assert!(paused.step(StepId::Microsoft365).unwrap().hops.is_empty());
    let counts = client.counts();
    assert!(counts.contains(&(QuerySource::Throttled, 2)), "{counts:?}");
}

#[tokio::test]
async fn without_microsoft365_the_classic_steps_decide() {
    let (_world, prober) = support::world().await;
    let mut options = support::fast_options();
    options.steps.retain(|s| *s != StepId::Microsoft365);
    let address = MailAddress::parse("someone@cloud.example").unwrap();
    let report = prober.probe(&address, &options).await;
    assert_eq!(report.outcome, Outcome::CertificatePrompt);
    assert_eq!(
        report.certificate_prompts.first(),
        Some(&StepId::RootDomain)
    );
}

#[tokio::test]
async fn international_addresses_are_probed_as_a_labels_and_shown_as_written() {
    let (_world, prober) = support::world().await;
    let report = probe(&prober, "someone@münchen.example").await;
    assert_eq!(report.outcome, Outcome::Ok, "{:#?}", report.steps);
    assert_eq!(report.domain.to_string(), "münchen.example");
    let endpoint = report.endpoint.unwrap();
    assert_eq!(
        endpoint.url,
        "https://autodiscover.xn--mnchen-3ya.example/Autodiscover/Autodiscover.xml"
    );
}
