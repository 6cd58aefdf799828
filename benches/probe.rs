//! Probe throughput: probes the fast scenarios of the simulated world over and over with a
//! bounded concurrency and reports probes per second and CPU seconds per probe. The simulated
//! servers run in the same process, so the CPU figure includes the servers' share.
//!
//! cargo bench --bench probe [-- PROBES [CONCURRENCY]]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use autodiscover_exporter::exporter::process::ProcessStats;
use autodiscover_exporter::lab::scenarios;
use autodiscover_exporter::model::address::MailAddress;
use autodiscover_exporter::probe::ProbeOptions;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let probes = args.first().copied().unwrap_or(2000);
    let concurrency = args.get(1).copied().unwrap_or(32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let world = scenarios::world().unwrap().start().await.unwrap();
        let prober = Arc::new(world.prober().unwrap());
        // Scenarios that wait for timeouts on purpose measure the timeout, not the prober.
        let domains: Vec<&str> = scenarios::catalogue()
            .into_iter()
            .filter(|s| !matches!(s.domain, "slowtls.example" | "blackhole.example" | "huge.example" | "slowdrip.example"))
            .map(|s| s.domain)
            .collect();
        let options = Arc::new(ProbeOptions::default());
        let semaphore = Arc::new(Semaphore::new(concurrency));
        let cpu_before = ProcessStats::read().map_or(0.0, |s| s.cpu_seconds);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..probes {
            let permit = semaphore.clone().acquire_owned().await.unwrap();
            let prober = prober.clone();
            let options = options.clone();
            let address = MailAddress::parse(&format!("someone@{}", domains[i % domains.len()]))
                .expect("catalogue domains are valid");
            tasks.spawn(async move {
                let report = prober.probe(&address, &options).await;
                drop(permit);
                report.duration_seconds
            });
        }
        let mut durations = Vec::with_capacity(probes);
        while let Some(result) = tasks.join_next().await {
            durations.push(result.unwrap());
        }
        let elapsed = started.elapsed();
        let cpu = ProcessStats::read().map_or(0.0, |s| s.cpu_seconds) - cpu_before;
        durations.sort_by(f64::total_cmp);
        println!(
            "{probes} probes of {} scenarios, concurrency {concurrency}: {:.0} probes/s, {:.2} ms CPU per probe, \
             probe duration median {:.1} ms, p99 {:.1} ms, wall {:.1} s",
            domains.len(),
            probes as f64 / elapsed.as_secs_f64(),
            cpu * 1000.0 / probes as f64,
            durations[durations.len() / 2] * 1000.0,
            durations[durations.len() * 99 / 100] * 1000.0,
            elapsed.as_secs_f64(),
        );
        world.stop().await;
    });
}
