//! `/metrics` at scale: builds the state of 10,000 domains (real probe reports of every lab
//! scenario, with a customer label each) and times rendering the exposition.
//!
//! cargo bench --bench render [-- DOMAINS]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use autodiscover_exporter::config::{Config, DomainConfig};
use autodiscover_exporter::exporter::process::ProcessStats;
use autodiscover_exporter::exporter::self_metrics::SelfMetrics;
use autodiscover_exporter::exporter::store::{self, Store};
use autodiscover_exporter::lab::scenarios;
use autodiscover_exporter::model::address::MailAddress;
use autodiscover_exporter::probe::ProbeOptions;
use autodiscover_exporter::render::metrics::{self, Format};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let domains: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let reports = runtime.block_on(async {
        let world = scenarios::world().unwrap().start().await.unwrap();
        let prober = world.prober().unwrap();
        let options = ProbeOptions {
            phase_timeout: Duration::from_millis(300),
            ..ProbeOptions::default()
        };
        let mut reports = Vec::new();
        for scenario in scenarios::catalogue() {
            let address = MailAddress::parse(&format!("someone@{}", scenario.domain))
                .expect("catalogue domains are valid");
            reports.push(prober.probe(&address, &options).await);
        }
        world.stop().await;
        reports
    });
    let rss_before = ProcessStats::read().map_or(0.0, |s| s.resident_bytes);

    let mut yaml = String::from("domains:\n");
    for i in 0..domains {
        yaml.push_str(&format!(
            "  - domain: customer{i}.example\n    labels: {{customer: \"Customer {i}\", tier: gold}}\n"
        ));
    }
    let config = Config::parse(&yaml).unwrap();
    let configs: Vec<Arc<DomainConfig>> = config.domains.into_iter().map(Arc::new).collect();
    let store = Store::default();
    store.replace_domains(&configs);
    let started = Instant::now();
    for (i, config) in configs.iter().enumerate() {
        let mut report = reports[i % reports.len()].clone();
        report.domain = config.domain.clone();
        store.record(config, report, Default::default(), Vec::new());
    }
    let record_time = started.elapsed();
    let rss_after = ProcessStats::read().map_or(0.0, |s| s.resident_bytes);
    let self_metrics = SelfMetrics::new();

    for format in [Format::Classic, Format::OpenMetrics] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..15 {
            let started = Instant::now();
            let out = store::exposition(&store, &self_metrics, format);
            times.push(started.elapsed());
            size = out.len();
        }
        times.sort();
        println!(
            "{format:?}: {domains} domains, {:.1} MiB, render min {:.1} ms, median {:.1} ms, max {:.1} ms",
            size as f64 / 1048576.0,
            ms(times[0]),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
    }
    let mut out = String::new();
    metrics::write_domains(
        &mut out,
        Format::Classic,
        store
            .read()
            .values()
            .filter_map(|e| e.latest.as_ref().map(|l| &l.samples)),
    );
    let series = out.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "series: {series} ({:.1} per domain)",
        series as f64 / domains as f64
    );
    println!(
        "state: recording {domains} reports took {:.1} ms ({:.1} µs per report); RSS {:.0} MiB before the state, {:.0} MiB with it",
        ms(record_time),
        record_time.as_secs_f64() * 1e6 / domains as f64,
        rss_before / 1048576.0,
        rss_after / 1048576.0
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
