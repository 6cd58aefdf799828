#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The exporter's HTTP interface, served on 127.0.0.1 and probing the simulated world.

mod support;

use autodiscover_exporter::exporter::ConfigSource;
use autodiscover_exporter::exporter::web_config::WebConfig;
use autodiscover_exporter::lab::pki::{TestCa, Validity};
use support::{RunningExporter, config_yaml, fixed, request, request_tls};

const SEED: &[(&str, &str)] = &[
    ("companya.example", "CompanyA"),
    ("companyb.example", "CompanyB"),
    ("companyc.example", "CompanyC"),
    ("nothing.example", "Nothing"),
];

fn has(metrics: &str, line: &str) -> bool {
    metrics.lines().any(|l| l == line)
}

#[tokio::test]
async fn metrics_show_each_scenario() {
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    let answer = request(running.address, "GET", "/metrics", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = &answer.body;
    let b = r#"domain="companyb.example",customer="CompanyB""#;
    for line in [
        format!("autodiscover_outcome{{{b},outcome=\"certificate_prompt\"}} 1"),
        format!("autodiscover_outcome{{{b},outcome=\"ok\"}} 0"),
        format!("autodiscover_certificate_prompt{{{b},step=\"root_domain\"}} 1"),
        format!("autodiscover_certificate_prompt{{{b},step=\"srv_record\"}} 0"),
        format!("autodiscover_srv_record_present{{{b}}} 1"),
        format!("autodiscover_step_reached{{{b}}} 4"),
        format!("autodiscover_probe_success{{{b}}} 0"),
        format!("autodiscover_redirect_prompt{{{b}}} 1"),
        format!("autodiscover_step_status{{{b},step=\"root_domain\",status=\"cert_name_mismatch\"}} 1"),
        format!("autodiscover_certificate_name_mismatch{{{b},step=\"root_domain\",host=\"companyb.example\"}} 1"),
        format!("autodiscover_srv_record_info{{{b},target=\"webmail.companya.example\",port=\"443\",priority=\"0\",weight=\"0\"}} 1"),
        format!("autodiscover_endpoint_info{{{b},step=\"srv_record\",url=\"https://webmail.companya.example/Autodiscover/Autodiscover.xml\"}} 1"),
        "autodiscover_step_reached{domain=\"companya.example\",customer=\"CompanyA\"} 2".to_owned(),
        "autodiscover_probe_success{domain=\"companya.example\",customer=\"CompanyA\"} 1".to_owned(),
        "autodiscover_outcome{domain=\"companyc.example\",customer=\"CompanyC\",outcome=\"redirect_prompt\"} 1".to_owned(),
        "autodiscover_outcome{domain=\"nothing.example\",customer=\"Nothing\",outcome=\"not_found\"} 1".to_owned(),
        "autodiscover_step_reached{domain=\"nothing.example\",customer=\"Nothing\"} 0".to_owned(),
        "autodiscover_probe_interval_seconds{domain=\"nothing.example\",customer=\"Nothing\"} 10".to_owned(),
        "autodiscover_exporter_domains 4".to_owned(),
        "autodiscover_exporter_config_last_reload_successful 1".to_owned(),
    ] {
        assert!(has(m, &line), "missing {line}\n{m}");
    }
    // one certificate_info per distinct leaf, with identity labels
    assert!(m.lines().any(|l| l.starts_with("autodiscover_certificate_info{domain=\"companyb.example\",customer=\"CompanyB\",step=\"srv_record\",host=\"webmail.companya.example\",subject=\"CN=webmail.companya.example\"")));
    assert!(m.lines().any(|l| {
        l.starts_with("autodiscover_certificate_days_to_expiry{domain=\"companya.example\"")
    }));
    assert!(m.lines().any(|l| l.starts_with(
        "autodiscover_certificate_not_after_timestamp_seconds{domain=\"companya.example\""
    )));
    assert!(
        m.lines()
            .any(|l| l.starts_with("process_resident_memory_bytes "))
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("autodiscover_exporter_build_info{version="))
    );
    assert!(m.lines().any(|l| {
        l.starts_with("autodiscover_exporter_probes_total{outcome=\"certificate_prompt\"}")
    }));
    // no endpoint, no endpoint_info series
    assert!(!m.contains("autodiscover_endpoint_info{domain=\"nothing.example\""));

    let open = request(
        running.address,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )],
    )
    .await;
    assert!(
        open.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(open.body.ends_with("# EOF\n"));
    assert!(open.body.contains("# TYPE autodiscover_certificate info\n"));
    assert!(
        open.body
            .contains("# UNIT autodiscover_probe_duration_seconds seconds\n")
    );
    running.stop().await;
}

/// The lines of the per-domain families: everything before the exporter's own metrics (which
/// change from one scrape to the next).
fn domain_part(exposition: &str) -> &str {
    let own = [
        "# HELP autodiscover_exporter_",
        "# HELP process_",
        "# HELP autodiscover_microsoft365",
    ]
    .iter()
    .filter_map(|marker| exposition.find(marker))
    .min()
    .unwrap_or(exposition.len());
    &exposition[..own]
}

fn gunzip(raw: &[u8]) -> String {
    use std::io::Read;
    // One member: a single-member decoder reads it all and leaves nothing behind.
    let mut single = flate2::read::GzDecoder::new(raw);
    let mut text = String::new();
    single.read_to_string(&mut text).unwrap();
    let mut rest = Vec::new();
    single.into_inner().read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{} bytes after the first gzip member",
        rest.len()
    );
    let mut multi = String::new();
    flate2::read::MultiGzDecoder::new(raw)
        .read_to_string(&mut multi)
        .unwrap();
    assert_eq!(multi, text);
    text
}

#[tokio::test]
async fn metrics_are_gzipped_when_asked() {
    let mut yaml = config_yaml(SEED);
    // Probed once in the test's lifetime: the exposition stays the same between requests.
    yaml = yaml.replace("interval: 10s", "interval: 1h");
    let running = RunningExporter::start(fixed(&yaml), None).await;
    for accept in [None, Some("application/openmetrics-text;version=1.0.0")] {
        let mut headers = vec![("Accept-Encoding", "gzip, deflate")];
        headers.extend(accept.map(|a| ("Accept", a)));
        let gzip = request(running.address, "GET", "/metrics", &headers).await;
        assert_eq!(gzip.status, 200);
        assert_eq!(gzip.headers["content-encoding"], "gzip");
        assert_eq!(gzip.headers["vary"], "Accept-Encoding");
        let unzipped = gunzip(&gzip.raw);
        let plain = request(running.address, "GET", "/metrics", &headers[1..]).await;
        assert!(!plain.headers.contains_key("content-encoding"));
        assert_eq!(gzip.headers["content-type"], plain.headers["content-type"]);
        assert!(
            domain_part(&unzipped).contains("autodiscover_outcome{domain=\"companyb.example\"")
        );
        assert_eq!(domain_part(&unzipped), domain_part(&plain.body));
        // The exporter's own metrics come fresh with every scrape, after the domains.
        assert!(unzipped.contains("\nautodiscover_exporter_domains 4\n"));
        assert!(unzipped.contains("\nprocess_resident_memory_bytes "));
        if accept.is_some() {
            assert!(unzipped.ends_with("# EOF\n"));
            assert_eq!(unzipped.matches("# EOF").count(), 1);
        }
    }
    // gzip refused: plain text.
    let refused = request(
        running.address,
        "GET",
        "/metrics",
        &[("Accept-Encoding", "gzip;q=0")],
    )
    .await;
    assert!(!refused.headers.contains_key("content-encoding"));
    assert!(refused.body.contains("autodiscover_exporter_domains 4"));
    running.stop().await;
}

#[tokio::test]
async fn service_endpoints_are_exported() {
    let running = RunningExporter::start(
        fixed(&config_yaml(&[
            ("ewscert.example", "Ewscert"),
            ("mailhoster.example", "Mailhoster"),
        ])),
        None,
    )
    .await;
    let m = &request(running.address, "GET", "/metrics", &[]).await.body;
    let e = r#"domain="ewscert.example",customer="Ewscert""#;
    let h = r#"domain="mailhoster.example",customer="Mailhoster""#;
    for line in [
        format!("autodiscover_outcome{{{e},outcome=\"certificate_prompt\"}} 1"),
        format!("autodiscover_probe_success{{{e}}} 0"),
        format!("autodiscover_step_reached{{{e}}} 2"),
        format!(
            "autodiscover_service_info{{{e},service=\"ews\",protocol=\"https\",host=\"mail.ewscert.example\",port=\"443\"}} 1"
        ),
        format!(
            "autodiscover_service_status{{{e},service=\"ews\",host=\"mail.ewscert.example\",status=\"cert_name_mismatch\"}} 1"
        ),
        format!(
            "autodiscover_service_status{{{e},service=\"oab\",host=\"autodiscover.ewscert.example\",status=\"ok\"}} 1"
        ),
        format!(
            "autodiscover_service_certificate_prompt{{{e},service=\"ews\",host=\"mail.ewscert.example\"}} 1"
        ),
        format!(
            "autodiscover_service_certificate_prompt{{{e},service=\"oab\",host=\"autodiscover.ewscert.example\"}} 0"
        ),
        format!(
            "autodiscover_certificate_name_mismatch{{{e},step=\"service\",host=\"mail.ewscert.example\"}} 1"
        ),
        format!(
            "autodiscover_certificate_name_mismatch{{{e},step=\"service\",host=\"autodiscover.ewscert.example\"}} 0"
        ),
        format!(
            "autodiscover_service_info{{{h},service=\"smtp\",protocol=\"smtp_starttls\",host=\"smtp.mailhoster.example\",port=\"587\"}} 1"
        ),
        format!(
            "autodiscover_service_info{{{h},service=\"imap\",protocol=\"imap_starttls\",host=\"mail.mailhoster.example\",port=\"143\"}} 1"
        ),
        format!(
            "autodiscover_service_status{{{h},service=\"imap\",host=\"mail.mailhoster.example\",status=\"ok\"}} 1"
        ),
        format!(
            "autodiscover_service_certificate_prompt{{{h},service=\"smtp\",host=\"smtp.mailhoster.example\"}} 1"
        ),
    ] {
        assert!(has(m, &line), "missing {line}\n{m}");
    }
    for prefix in [
        format!(
            "autodiscover_certificate_days_to_expiry{{{h},step=\"service\",host=\"smtp.mailhoster.example\"}} "
        ),
        format!(
            "autodiscover_certificate_not_after_timestamp_seconds{{{h},step=\"service\",host=\"mail.mailhoster.example\"}} "
        ),
        format!(
            "autodiscover_certificate_info{{{h},step=\"service\",host=\"smtp.mailhoster.example\",subject=\"CN=mx.otherhoster.example\""
        ),
    ] {
        assert!(
            m.lines().any(|l| l.starts_with(&prefix)),
            "missing {prefix}\n{m}"
        );
    }
    // one status series per service and host, never two
    let mut seen = std::collections::HashSet::new();
    for line in m
        .lines()
        .filter(|l| l.starts_with("autodiscover_service_status{"))
    {
        let key = line.split(",status=").next().unwrap().to_owned();
        assert!(seen.insert(key), "duplicate {line}");
    }

    // The status page names the service that prompts; the domain page lists the services.
    let page = request(running.address, "GET", "/", &[]).await.body;
    assert!(
        page.contains("ews mail.ewscert.example: service certificate prompt"),
        "{page}"
    );
    let domain = request(
        running.address,
        "GET",
        "/domains/ewscert.example",
        &[("Accept", "text/html")],
    )
    .await
    .body;
    for needle in [
        "After Autodiscover: the servers Outlook connects to next",
        "Settings from <code>https://autodiscover.ewscert.example/Autodiscover/Autodiscover.xml</code> (no authentication)",
        "<code>https://mail.ewscert.example/EWS/Exchange.asmx</code>",
        "<td class=\"bad sev\">cert_name_mismatch",
        "✗ name (mail.ewscert.example)",
        "<td class=\"good sev\">ok",
    ] {
        assert!(domain.contains(needle), "missing {needle}\n{domain}");
    }
    running.stop().await;
}

#[tokio::test]
async fn label_values_are_escaped() {
    let yaml = "defaults:\n  interval: 10s\n  phase_timeout: 1s\ndomains:\n  - domain: nothing.example\n    labels: {customer: \"Say \\\"hi\\\" \\\\ bye\\nnow\"}\n";
    let running = RunningExporter::start(fixed(yaml), None).await;
    let m = request(running.address, "GET", "/metrics", &[]).await.body;
    assert!(
        has(
            &m,
            r#"autodiscover_probe_success{domain="nothing.example",customer="Say \"hi\" \\ bye\nnow"} 0"#
        ),
        "{m}"
    );
    running.stop().await;
}

#[tokio::test]
async fn reload_adds_removes_and_keeps_the_old_config_on_errors() {
    let path = std::env::temp_dir().join(format!("autodiscover-reload-{}.yml", std::process::id()));
    std::fs::write(&path, config_yaml(&SEED[..2])).unwrap();
    let running = RunningExporter::start(ConfigSource::File(path.clone()), None).await;
    let before = request(running.address, "GET", "/metrics", &[]).await.body;
    assert!(before.contains("domain=\"companyb.example\""));

    std::fs::write(
        &path,
        config_yaml(&[
            ("companya.example", "CompanyA"),
            ("companyc.example", "CompanyC"),
        ]),
    )
    .unwrap();
    let answer = request(running.address, "POST", "/-/reload", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // an unchanged domain keeps its series through the reload: no gap in its data
    let right_after = request(running.address, "GET", "/metrics", &[]).await.body;
    assert!(has(
        &right_after,
        "autodiscover_probe_success{domain=\"companya.example\",customer=\"CompanyA\"} 1"
    ));
    running.wait_for_results().await;
    let after = request(running.address, "GET", "/metrics", &[]).await.body;
    assert!(
        !after.contains("companyb.example"),
        "removed domain still exported"
    );
    assert!(after.contains("domain=\"companyc.example\""));
    assert!(has(&after, "autodiscover_exporter_domains 2"));

    std::fs::write(&path, "domains:\n  - domain: [broken\n").unwrap();
    let answer = request(running.address, "POST", "/-/reload", &[]).await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.body.contains("failed to reload config"),
        "{}",
        answer.body
    );
    let kept = request(running.address, "GET", "/metrics", &[]).await.body;
    assert!(has(
        &kept,
        "autodiscover_exporter_config_last_reload_successful 0"
    ));
    assert!(
        kept.contains("domain=\"companyc.example\""),
        "running config was dropped"
    );
    // The pages say so until a reload succeeds.
    let page = request(running.address, "GET", "/", &[]).await.body;
    assert!(
        page.contains("<div class=\"banner\" role=\"alert\"><strong>The last configuration reload failed</strong>"),
        "no banner after a failed reload"
    );
    assert!(page.contains("config"), "the banner names the error");
    assert_eq!(
        request(running.address, "GET", "/-/reload", &[])
            .await
            .status,
        405
    );
    running.stop().await;
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn probe_endpoint_answers_configured_targets_only() {
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    let answer = request(
        running.address,
        "GET",
        "/probe?target=companyb.example",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "9")],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        has(
            &answer.body,
            "autodiscover_outcome{domain=\"companyb.example\",customer=\"CompanyB\",outcome=\"certificate_prompt\"} 1"
        ),
        "{}",
        answer.body
    );
    assert!(
        !answer.body.contains("companya.example\",customer"),
        "other domains leaked into /probe"
    );
    assert!(
        !answer.body.contains("autodiscover_exporter_"),
        "exporter metrics leaked into /probe"
    );

    let refused = request(
        running.address,
        "GET",
        "/probe?target=elsewhere.example",
        &[],
    )
    .await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("not a configured domain"));
    assert_eq!(
        request(
            running.address,
            "GET",
            "/probe?target=not%20a%20domain",
            &[]
        )
        .await
        .status,
        400
    );
    assert_eq!(
        request(running.address, "GET", "/probe", &[]).await.status,
        400
    );

    let debug = request(
        running.address,
        "GET",
        "/probe?target=someone%40companyb.example&debug=true",
        &[],
    )
    .await;
    assert!(
        debug
            .body
            .contains("Autodiscover for someone@companyb.example")
    );
    assert!(debug.body.contains("Metrics that would have been returned"));
    // The diagnosis runs for the trace alone (plain /probe answers skip it): it must be there.
    assert!(
        debug
            .body
            .contains("certificate_name_mismatch: https://companyb.example"),
        "{}",
        debug.body
    );
    running.stop().await;

    let open = RunningExporter::start(
        fixed("allow_any_target: true\ndefaults:\n  phase_timeout: 1s\n"),
        None,
    )
    .await;
    let answer = request(open.address, "GET", "/probe?target=companyc.example", &[]).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains(
            "autodiscover_outcome{domain=\"companyc.example\",outcome=\"redirect_prompt\"} 1"
        ),
        "{}",
        answer.body
    );
    open.stop().await;
}

#[tokio::test]
async fn status_page_and_domain_traces() {
    let running = RunningExporter::start(fixed(&config_yaml(SEED)), None).await;
    let page = request(running.address, "GET", "/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.starts_with("<!DOCTYPE html>"));
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.starts_with("default-src 'none'; style-src 'sha256-"),
        "{policy}"
    );
    for needle in [
        "<a href=\"/domains/companyb.example\">companyb.example</a>",
        "class=\"v certificate_prompt\"",
        "class=\"v ok\"",
        "title=\"https://webmail.companya.example/Autodiscover/Autodiscover.xml\"",
        ">webmail.companya.example</span>",
        "root_domain: certificate name mismatch",
        "<span class=\"chip\" title=\"customer\">CompanyB</span>",
        "<option>CompanyB</option>",
        "<meta http-equiv=\"refresh\" content=\"60; url=/\">",
    ] {
        assert!(page.body.contains(needle), "missing {needle}");
    }
    // Worst first: the certificate prompt before the redirect prompt before ok.
    let (b, c, a) = (
        page.body.find("/domains/companyb.example").unwrap(),
        page.body.find("/domains/companyc.example").unwrap(),
        page.body.find("/domains/companya.example").unwrap(),
    );
    assert!(b < c && c < a, "order: {b} {c} {a}");
    assert!(!page.body.contains("<script"));

    // Filters are query parameters and the refresh keeps them.
    let filtered = request(running.address, "GET", "/?verdict=certificate_prompt", &[]).await;
    assert!(filtered.body.contains("/domains/companyb.example"));
    assert!(!filtered.body.contains("/domains/companya.example\""));
    assert!(filtered.body.contains("url=/?verdict=certificate_prompt\""));
    assert!(
        filtered
            .body
            .contains("<option selected>certificate_prompt</option>")
    );
    let by_customer = request(running.address, "GET", "/?customer=CompanyA", &[]).await;
    assert!(by_customer.body.contains("/domains/companya.example"));
    assert!(!by_customer.body.contains("/domains/companyb.example\""));
    assert!(
        by_customer
            .body
            .contains("<option selected>CompanyA</option>")
    );
    assert!(by_customer.body.contains("1 of 4 domains match"));

    // The same list as JSON, every domain, worst first.
    for (path, headers) in [
        ("/?format=json", &[][..]),
        ("/", &[("Accept", "application/json")][..]),
    ] {
        let json = request(running.address, "GET", path, headers).await;
        assert_eq!(json.headers["content-type"], "application/json");
        let rows: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0]["domain"], "companyb.example");
        assert_eq!(rows[0]["outcome"], "certificate_prompt");
        assert_eq!(rows[0]["labels"]["customer"], "CompanyB");
        assert_eq!(rows[0]["endpoint_step"], "srv_record");
        assert_eq!(rows[0]["problem"], "root_domain: certificate name mismatch");
        assert_eq!(rows[0]["url"], "/domains/companyb.example");
    }
    let trace = request(running.address, "GET", "/domains/companyb.example", &[]).await;
    assert!(trace.body.contains("certificate_name_mismatch"));
    for needle in [
        "<details open><summary><span class=\"i bad\">✗</span> <strong>root_domain</strong>",
        "<span class=\"i good\">✓</span> <strong>srv_record</strong>",
        "<span class=\"bad\">✗ name (companyb.example)</span>",
        "<form method=\"post\" action=\"/domains/companyb.example/probe\">",
        "<h2>DNS delegation</h2>",
        "NS: ns1.companyb.example",
        "<h2>What changed</h2>",
    ] {
        assert!(trace.body.contains(needle), "domain page misses {needle}");
    }
    assert_eq!(
        trace
            .body
            .matches("Remove the A/AAAA record of companyb.example")
            .count(),
        1,
        "findings are listed once"
    );
    assert!(
        trace
            .body
            .contains("Remove the A/AAAA record of companyb.example")
    );
    let json = request(
        running.address,
        "GET",
        "/domains/companyb.example",
        &[("Accept", "application/json")],
    )
    .await;
    let report: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(report["outcome"], "certificate_prompt");
    assert_eq!(report["endpoint"]["step"], "srv_record");
    assert_eq!(report["certificate_prompts"][0], "root_domain");
    assert_eq!(report["srv"]["present"], true);
    assert_eq!(
        request(running.address, "GET", "/domains/unknown.example", &[])
            .await
            .status,
        404
    );
    assert_eq!(
        request(running.address, "GET", "/-/healthy", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        request(running.address, "GET", "/-/ready", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        request(running.address, "GET", "/nope", &[]).await.status,
        404
    );
    running.stop().await;
}

#[tokio::test]
async fn web_config_serves_tls_and_checks_basic_auth() {
    let dir = std::env::temp_dir().join(format!("autodiscover-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new("Web CA").unwrap();
    let identity = ca
        .issue(&["exporter.lab.example"], Validity::ValidFor { days: 30 })
        .unwrap();
    let cert_pem: String = identity
        .chain
        .iter()
        .map(|c| pem_block("CERTIFICATE", c.as_ref()))
        .collect();
    let key_der = match &identity.key {
        rustls_pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => panic!("unexpected key type"),
    };
    std::fs::write(dir.join("cert.pem"), cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), pem_block("PRIVATE KEY", &key_der)).unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  prometheus: \"{hash}\"\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    std::fs::write(dir.join("web.yml"), web).unwrap();
    let web_config = WebConfig::load(&dir.join("web.yml")).unwrap();
    let running = RunningExporter::start(fixed(&config_yaml(&SEED[3..])), Some(web_config)).await;
    let ca_der = ca.der().clone();

    let anonymous = request_tls(running.address, &ca_der, "/metrics", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // base64("prometheus:s3cret") and base64("prometheus:wrong")
    let good = request_tls(
        running.address,
        &ca_der,
        "/metrics",
        &[("Authorization", "Basic cHJvbWV0aGV1czpzM2NyZXQ=")],
    )
    .await;
    assert_eq!(good.status, 200);
    assert!(
        good.body
            .contains("autodiscover_outcome{domain=\"nothing.example\"")
    );
    assert_eq!(good.headers["x-frame-options"], "deny");
    let wrong = request_tls(
        running.address,
        &ca_der,
        "/metrics",
        &[("Authorization", "Basic cHJvbWV0aGV1czp3cm9uZw==")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    // plain HTTP to the TLS port gets no response
    let plain = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let tcp = tokio::net::TcpStream::connect(running.address)
            .await
            .unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::get("/metrics")
            .header("Authorization", "Basic cHJvbWV0aGV1czpzM2NyZXQ=")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        sender.send_request(request).await
    })
    .await
    .expect("the TLS port must close a plain connection, not hang");
    assert!(plain.is_err(), "plain HTTP got an answer from the TLS port");
    running.stop().await;

    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "basic_auth_users:\n  a: plaintext\n").unwrap();
    assert!(WebConfig::load(&bad).unwrap_err().contains("bcrypt"));
    std::fs::write(
        &bad,
        "tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n",
    )
    .unwrap();
    assert!(WebConfig::load(&bad).unwrap_err().contains("cert_file"));
    std::fs::write(&bad, "tls_server_config:\n  cert_fil: x\n").unwrap();
    assert!(WebConfig::load(&bad).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
