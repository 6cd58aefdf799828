#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Hostile DNS, hostile servers and hostile clients: every input from outside is bounded, and
//! a local failure is never blamed on a customer's domain.

mod support;

use support::{RunningExporter, config_yaml, fixed, request};

const SEED: &[(&str, &str)] = &[
    ("companyb.example", "CompanyB"),
    ("nothing.example", "Nothing"),
];

#[tokio::test]
async fn hostile_scrape_timeouts_do_not_panic() {
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    for value in [
        "1e20",
        "1e308",
        "18446744073709551616",
        "NaN",
        "-1",
        "inf",
        "0",
        "3",
    ] {
        let answer = request(
            running.address,
            "GET",
            "/probe?target=nothing.example",
            &[("X-Prometheus-Scrape-Timeout-Seconds", value)],
        )
        .await;
        assert_eq!(answer.status, 200, "{value}: {}", answer.body);
        assert!(
            answer.body.contains("autodiscover_outcome{"),
            "{value}: {}",
            answer.body
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn probe_targets_with_hostile_local_parts_are_refused() {
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    let long = format!("/probe?target={}%40companyb.example", "a".repeat(9_990));
    let answer = request(running.address, "GET", &long, &[]).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.len() < 1024,
        "the refusal echoes the whole target: {} bytes",
        answer.body.len()
    );
    for target in [
        "a%0D%0Ab%40companyb.example",
        "a%0Ab%40companyb.example",
        "someone%40companyb.example%0D%0AX-Injected:%201",
        "%1B%5B31mred%40companyb.example",
    ] {
        let answer = request(
            running.address,
            "GET",
            &format!("/probe?target={target}"),
            &[],
        )
        .await;
        assert_eq!(answer.status, 400, "{target}: {}", answer.body);
        assert!(
            !answer.body.contains('\r') && !answer.body.contains('\u{1b}'),
            "{target}: control characters echoed: {:?}",
            answer.body
        );
    }
    running.stop().await;
}
