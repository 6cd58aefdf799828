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

/// A world of hostile servers: control characters and bidi overrides in a certificate subject,
/// in an Autodiscover error message and in response headers; a header cut inside a character.
fn hostile_world() -> autodiscover_exporter::lab::world::WorldBuilder {
    use autodiscover_exporter::lab::pki::Validity;
    use autodiscover_exporter::lab::site::Behaviour;
    use autodiscover_exporter::lab::world::WorldBuilder;
    use autodiscover_exporter::protocol::pox;
    let mut w = WorldBuilder::new().unwrap();
    let evil = w
        .ca()
        .issue_with_subject(
            "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}moc.live",
            &["autodiscover.evil.example"],
            Validity::ValidFor { days: 365 },
        )
        .unwrap();
    let xml = pox::error_response(
        "500\u{1b}[5m",
        "Invalid\u{1b}[1A\u{1b}[2K\r user\u{7}\u{202e}\u{9b}2J",
    );
    w.https(
        "203.0.113.70",
        evil,
        Behaviour::Raw {
            status: 200,
            headers: vec![
                ("Content-Type".into(), b"text/xml; charset=utf-8".to_vec()),
                (
                    "X-Evil-Enabled".into(),
                    "\u{9b}31m\u{202e}true\u{2066}".as_bytes().to_vec(),
                ),
            ],
            body: xml.into_bytes(),
        },
    );
    w.zone("evil.example", "autodiscover A 203.0.113.70");
    // 511 bytes, then a byte that is not UTF-8: its replacement character straddles byte 512.
    let mut server = vec![b'a'; 511];
    server.push(0xff);
    let cut = w
        .ca()
        .issue(
            &["autodiscover.cut.example"],
            Validity::ValidFor { days: 365 },
        )
        .unwrap();
    w.https(
        "203.0.113.71",
        cut,
        Behaviour::Raw {
            status: 404,
            headers: vec![("Server".into(), server)],
            body: Vec::new(),
        },
    );
    w.zone("cut.example", "autodiscover A 203.0.113.71");
    w
}

/// Characters that make a terminal (or a bidi-aware viewer) do something, other than newlines.
fn unsafe_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| *c != '\n')
        .filter(|c| autodiscover_exporter::model::text::is_unsafe(*c))
        .collect()
}

#[tokio::test]
async fn hostile_text_reaches_no_terminal_unescaped() {
    use autodiscover_exporter::render::trace::{self, Colour};
    let world = hostile_world().start().await.unwrap();
    let prober = world.prober().unwrap();
    let report = support::probe(&prober, "evil.example").await;
    let leaf = report
        .steps
        .iter()
        .flat_map(|s| s.addresses())
        .find_map(|(_, a)| a.tls.as_ref().and_then(|t| t.leaf()).cloned())
        .expect("the hostile server presented a certificate");
    assert!(
        leaf.subject.contains('\u{1b}') || leaf.subject.contains("\\x1b"),
        "the lab certificate does not carry the escape: {:?}",
        leaf.subject
    );
    let text = trace::render(&report, Colour::Off);
    assert_eq!(unsafe_chars(&text), Vec::<char>::new(), "{text}");
    assert!(text.contains("\\u{202e}"), "{text}");
    let coloured = trace::render(&report, Colour::On);
    for (index, _) in coloured.match_indices('\u{1b}') {
        let rest = &coloured[index + 1..];
        let sgr = rest.strip_prefix('[').is_some_and(|r| {
            let end = r.find('m').unwrap_or(r.len());
            end > 0 && r[..end].chars().all(|c| c.is_ascii_digit() || c == ';')
        });
        assert!(
            sgr,
            "an escape that is not our colour: {:?}",
            &rest[..rest.len().min(20)]
        );
    }
    let page = autodiscover_exporter::render::html::domain_page(
        &autodiscover_exporter::render::html::DomainView {
            domain: &report.domain,
            labels: &Default::default(),
            report: Some(&report),
        },
        0,
    );
    assert_eq!(unsafe_chars(&page), Vec::<char>::new());
}

#[tokio::test]
async fn a_header_cut_inside_a_character_is_no_panic() {
    let world = hostile_world().start().await.unwrap();
    let prober = world.prober().unwrap();
    let report = support::probe(&prober, "cut.example").await;
    let server = report
        .steps
        .iter()
        .flat_map(|s| s.addresses())
        .find_map(|(_, a)| a.http.as_ref().and_then(|h| h.server.clone()))
        .expect("the Server header was recorded");
    assert_eq!(server, "a".repeat(511));
}

#[tokio::test]
async fn probe_debug_output_is_escaped() {
    let yaml = "defaults:\n  phase_timeout: 1500ms\n  timeout: 8s\n  step_timeout: 5s\ndomains:\n  - domain: evil.example\n";
    let running = RunningExporter::start_in(hostile_world(), fixed(yaml), None).await;
    let answer = request(
        running.address,
        "GET",
        "/probe?target=evil.example&debug=true",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("Autodiscover for"), "{}", answer.body);
    assert_eq!(
        unsafe_chars(&answer.body),
        Vec::<char>::new(),
        "{}",
        answer.body
    );
    let metrics = request(running.address, "GET", "/metrics", &[]).await.body;
    assert!(
        metrics.contains("autodiscover_certificate_info{"),
        "{metrics}"
    );
    assert_eq!(unsafe_chars(&metrics), Vec::<char>::new());
    running.stop().await;
}
