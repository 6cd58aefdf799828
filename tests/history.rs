#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The history of changes: the seed's DNS provider change played in the simulated world, a
//! history that survives a restart and a `kill -9`, and an unusable history file.

mod support;

use autodiscover_exporter::exporter::history::{Entry, HistoryDb};
use autodiscover_exporter::exporter::{HistoryLocation, StartOptions};
use autodiscover_exporter::lab::scenarios;
use autodiscover_exporter::model::history::{Change, ChangeKind, DomainMemory};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{RunningExporter, config_yaml, fixed, request};

const DOMAINS: &[(&str, &str)] = &[
    ("companyc.example", "CompanyC"),
    ("companya.example", "CompanyA"),
];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "autodiscover-history-it-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config_with_storage(path: &Path) -> String {
    format!(
        "{}storage:\n  path: {}\n  retention: 30d\n",
        config_yaml(DOMAINS),
        path.display()
    )
}

async fn start(path: &Path) -> RunningExporter {
    let options = StartOptions {
        history: HistoryLocation::Configured,
        external_url: "https://monitor.example.net/autodiscover/".into(),
        ..StartOptions::default()
    };
    RunningExporter::start_with(fixed(&config_with_storage(path)), None, options).await
}

fn metric(metrics: &str, prefix: &str) -> Option<String> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
}

async fn domain_json(running: &RunningExporter, domain: &str) -> serde_json::Value {
    let answer = request(
        running.address,
        "GET",
        &format!("/domains/{domain}"),
        &[("Accept", "application/json")],
    )
    .await;
    serde_json::from_str(&answer.body).unwrap()
}

fn kinds(history: &serde_json::Value) -> Vec<String> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_dns_provider_change_is_in_the_timeline_the_metrics_and_the_findings() {
    let dir = temp_dir("story");
    let path = dir.join("history.db");
    let running = start(&path).await;
    let metrics = request(running.address, "GET", "/metrics", &[]).await.body;
    let labels = "{domain=\"companyc.example\",customer=\"CompanyC\"";
    assert!(
        metrics.contains(&format!(
            "autodiscover_domain_nameservers_info{labels},nameservers=\"ns1.old-dns.example,ns2.old-dns.example\"}} 1"
        )),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, &format!("autodiscover_domain_soa_serial{labels}")).as_deref(),
        Some("2024010101")
    );
    assert_eq!(
        metric(
            &metrics,
            "autodiscover_domain_delegation_changed_timestamp_seconds"
        ),
        None,
        "absent until a change was seen"
    );
    assert_eq!(
        metric(&metrics, "autodiscover_exporter_history_writable").as_deref(),
        Some("1")
    );
    let before = domain_json(&running, "companyc.example").await;
    assert_eq!(before["outcome"], "redirect_prompt");
    assert_eq!(before["history"], serde_json::json!([]));
    assert_eq!(
        before["delegation"]["soa"]["primary"],
        "ns1.old-dns.example"
    );

    // The CEO moves the zone to a new provider; "probe now" shows it at once.
    let (zone, records) = scenarios::provider_change();
    running.world.replace_zone(zone, &records).await.unwrap();
    let answer = request(
        running.address,
        "POST",
        "/domains/companyc.example/probe",
        &[],
    )
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.headers["location"],
        "https://monitor.example.net/autodiscover/domains/companyc.example"
    );
    let after = domain_json(&running, "companyc.example").await;
    assert_eq!(after["outcome"], "certificate_prompt");
    let history = &after["history"];
    assert_eq!(
        kinds(history),
        [
            "nameservers",
            "soa_serial",
            "soa_primary",
            "srv_records",
            "addresses",
            "step_status",
            "step_status",
            "endpoint",
            "verdict"
        ],
        "{history:#}"
    );
    assert_eq!(
        history[0]["before"],
        "ns1.old-dns.example,ns2.old-dns.example"
    );
    assert_eq!(
        history[0]["after"],
        "ns1.new-dns.example,ns2.new-dns.example"
    );
    assert_eq!(history[3]["after"], "");
    assert_eq!(history[4]["subject"], "companyc.example");
    assert_eq!(history[4]["after"], "198.51.100.31");
    assert_eq!(history[8]["before"], "redirect_prompt");
    assert_eq!(history[8]["after"], "certificate_prompt");
    let changed_at = after["delegation_changed_at"].as_i64().unwrap();
    assert!(
        after["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "regressed_after_delegation_change"),
        "{:#}",
        after["findings"]
    );

    let metrics = request(running.address, "GET", "/metrics", &[]).await.body;
    assert_eq!(
        metric(
            &metrics,
            &format!("autodiscover_domain_delegation_changed_timestamp_seconds{labels}")
        ),
        Some(changed_at.to_string())
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("autodiscover_regressed_after_delegation_change{labels}")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        metric(
            &metrics,
            "autodiscover_regressed_after_delegation_change{domain=\"companya.example\""
        )
        .as_deref(),
        Some("0")
    );

    let page = request(running.address, "GET", "/domains/companyc.example", &[]).await;
    for needle in [
        "NS changed from ns1.old-dns.example,ns2.old-dns.example to ns1.new-dns.example,ns2.new-dns.example",
        "SRV record lost (was 0 0 443 webmail.companya.example)",
        "verdict redirect_prompt → certificate_prompt",
        "regressed_after_delegation_change",
        "href=\"https://monitor.example.net/autodiscover/\"",
    ] {
        assert!(page.body.contains(needle), "domain page misses {needle}");
    }
    let status = request(running.address, "GET", "/", &[]).await;
    assert!(
        status
            .body
            .contains("title=\"verdict redirect_prompt → certificate_prompt\""),
        "the status page shows the last change"
    );

    // Restart on the same file: the timeline and the delegation change are still there.
    running.exporter.shared().history.flush().await;
    running.stop().await;
    let again = start(&path).await;
    let restarted = domain_json(&again, "companyc.example").await;
    let history = restarted["history"].as_array().unwrap();
    assert!(history.len() >= 9, "{history:#?}");
    assert_eq!(history[0]["kind"], "nameservers");
    assert_eq!(
        history[0]["after"],
        "ns1.new-dns.example,ns2.new-dns.example"
    );
    // The fresh world is back at the old provider: the first probe after the restart is
    // compared with the last one before it, so that is a change too.
    assert!(
        history[9..].iter().any(|c| c["kind"] == "nameservers"
            && c["after"] == "ns1.old-dns.example,ns2.old-dns.example"),
        "{history:#?}"
    );
    again.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_unusable_history_file_keeps_the_exporter_probing() {
    let dir = temp_dir("unusable");
    let corrupt = dir.join("corrupt.db");
    std::fs::write(&corrupt, vec![0x42; 4096]).unwrap();
    for path in [dir.join("missing").join("history.db"), corrupt] {
        let running = start(&path).await;
        let metrics = request(running.address, "GET", "/metrics", &[]).await.body;
        assert_eq!(
            metric(&metrics, "autodiscover_exporter_history_writable").as_deref(),
            Some("0"),
            "{}",
            path.display()
        );
        assert!(metrics.contains("autodiscover_outcome{domain=\"companyc.example\""));
        // Changes are still seen, in memory.
        let (zone, records) = scenarios::provider_change();
        running.world.replace_zone(zone, &records).await.unwrap();
        let answer = request(
            running.address,
            "POST",
            "/domains/companyc.example/probe",
            &[],
        )
        .await;
        assert_eq!(answer.status, 303);
        let json = domain_json(&running, "companyc.example").await;
        assert!(kinds(&json["history"]).contains(&"verdict".to_owned()));
        running.stop().await;
    }
    assert_eq!(
        std::fs::read(dir.join("corrupt.db")).unwrap(),
        vec![0x42; 4096]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn probe_now_right_after_a_probe_answers_when_its_own_probe_is_in() {
    // Each "probe now" waits for a result newer than the one shown. Probes of this world take
    // milliseconds, so back-to-back requests start their probes within one second of each
    // other; telling results apart by their start second made every such request wait out the
    // probe timeout plus 5 s (13 s here).
    let dir = temp_dir("probe-now");
    let running = start(&dir.join("history.db")).await;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let answer = request(
            running.address,
            "POST",
            "/domains/companyc.example/probe",
            &[],
        )
        .await;
        assert_eq!(answer.status, 303);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(6), "probe now took {took:?}");
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

const CHILD_ENV: &str = "AUTODISCOVER_HISTORY_CRASH_CHILD";
const COMMITTED: usize = 300;

fn change(n: usize) -> Change {
    Change {
        at: 1_800_000_000 + n as i64,
        kind: ChangeKind::SoaSerial,
        subject: String::new(),
        before: n.to_string(),
        after: (n + 1).to_string(),
    }
}

/// Run by `committed_changes_survive_kill_9` in a child process: writes through the exporter's
/// writer thread, says how much is committed, and keeps writing until it is killed.
#[test]
#[ignore = "the child of committed_changes_survive_kill_9"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let history = autodiscover_exporter::exporter::history::History::open(
            Path::new(&path),
            Duration::from_secs(3650 * 86400),
            1_000_000,
        )
        .unwrap();
        let entry = |n| Entry {
            domain: "crash.example".into(),
            memory: DomainMemory::default(),
            changes: vec![change(n)],
        };
        for n in 0..COMMITTED {
            history.record(entry(n)).await;
        }
        history.flush().await;
        println!("COMMITTED {COMMITTED}");
        let mut n = COMMITTED;
        loop {
            history.record(entry(n)).await;
            n += 1;
        }
    });
}

#[test]
fn committed_changes_survive_kill_9() {
    let dir = temp_dir("crash");
    let path = dir.join("history.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--include-ignored", "--nocapture"])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = false;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains(&format!("COMMITTED {COMMITTED}")) {
            committed = true;
            break;
        }
    }
    assert!(committed, "the child never committed");
    // Let it write some more, then SIGKILL it mid-write.
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let db = HistoryDb::open(&path, Duration::from_secs(3650 * 86400), 1_000_000).unwrap();
    let count = db.count("crash.example").unwrap();
    assert!(
        count >= COMMITTED,
        "only {count} of {COMMITTED} committed changes survived"
    );
    let timeline = db.timeline("crash.example", count).unwrap();
    for (n, found) in timeline.iter().take(COMMITTED).enumerate() {
        assert_eq!(found, &change(n));
    }
    let _ = std::fs::remove_dir_all(dir);
}
