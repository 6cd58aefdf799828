//! Shared helpers: one simulated world per test binary, short timeouts.

#![allow(dead_code, unreachable_pub)]

use autodiscover_exporter::lab::{scenarios, world::World};
use autodiscover_exporter::probe::{ProbeOptions, Prober};
use autodiscover_exporter::report::ProbeReport;
use std::time::Duration;

/// Probe options that keep timeouts short in tests.
pub fn fast_options() -> ProbeOptions {
    ProbeOptions {
        timeout: Duration::from_secs(10),
        step_timeout: Duration::from_secs(6),
        phase_timeout: Duration::from_millis(1500),
        ..ProbeOptions::default()
    }
}

/// Starts the catalogue world.
pub async fn world() -> (World, Prober) {
    let world = scenarios::world().unwrap().start().await.unwrap();
    let prober = world.prober().unwrap();
    (world, prober)
}

/// Probes `someone@domain`.
pub async fn probe(prober: &Prober, domain: &str) -> ProbeReport {
    prober
        .probe(&format!("someone@{domain}"), &fast_options())
        .await
}
