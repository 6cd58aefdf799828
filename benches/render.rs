//! `/metrics` at scale: builds the state of 10,000 domains (real probe reports of every lab
//! scenario, with a customer label each) and times rendering the exposition.
//!
//! cargo bench --bench render [-- DOMAINS]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use autodiscover_exporter::config::{Config, DomainConfig};
use autodiscover_exporter::exporter::exposition;
use autodiscover_exporter::exporter::process::ProcessStats;
use autodiscover_exporter::exporter::self_metrics::SelfMetrics;
use autodiscover_exporter::exporter::store::Store;
use autodiscover_exporter::lab::scenarios;
use autodiscover_exporter::model::address::MailAddress;
use autodiscover_exporter::probe::ProbeOptions;
use autodiscover_exporter::render::gzip::{self, DeflateWriter};
use autodiscover_exporter::render::metrics::Format;
use std::io::Write;
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
        store.record(config, report);
    }
    let record_time = started.elapsed();
    let rss_after = ProcessStats::read().map_or(0.0, |s| s.resident_bytes);
    let self_metrics = SelfMetrics::new();

    for format in [Format::Classic, Format::OpenMetrics] {
        let mut builds = Vec::new();
        let mut scrapes = Vec::new();
        let mut plains = Vec::new();
        let mut size = 0;
        let mut plain_size = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let built = exposition::build(&store, format, 0).unwrap();
            builds.push(started.elapsed());
            let started = Instant::now();
            let mut text = String::new();
            self_metrics.encode(&mut text, format);
            let mut own = DeflateWriter::new();
            own.write_all(text.as_bytes()).unwrap();
            let body = gzip::member(&built.part, &own.finished().unwrap());
            scrapes.push(started.elapsed());
            size = body.len();
            let started = Instant::now();
            let mut plain =
                String::from_utf8(gzip::inflate_flushed(&built.part.bytes).unwrap()).unwrap();
            self_metrics.encode(&mut plain, format);
            plains.push(started.elapsed());
            plain_size = plain.len();
        }
        builds.sort();
        scrapes.sort();
        plains.sort();
        println!(
            "{format:?} plain: {:.1} MiB, from a current stream median {:.1} ms",
            plain_size as f64 / 1048576.0,
            ms(plains[plains.len() / 2])
        );
        println!(
            "{format:?} gzip: {:.1} MiB on the wire; background build median {:.1} ms (min {:.1}); scrape median {:.2} ms (max {:.2})",
            size as f64 / 1048576.0,
            ms(builds[builds.len() / 2]),
            ms(builds[0]),
            ms(scrapes[scrapes.len() / 2]),
            ms(scrapes[scrapes.len() - 1])
        );
    }
    let built = exposition::build(&store, Format::Classic, 0).unwrap();
    let out = String::from_utf8(gzip::inflate_flushed(&built.part.bytes).unwrap()).unwrap();
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
