//! `demo`: the simulated world of `lab::scenarios` and the exporter probing it.

use super::serve::{bind, serve_until_signal};
use super::{
    DemoArgs, EXIT_CANNOT_RUN, LogFormat, init_logging, parse_listen_address, print_report,
};
use crate::config::Config;
use crate::diagnose::{self, Expectations};
use crate::exporter::web::WebOptions;
use crate::exporter::{ConfigSource, Exporter, ProberFactory};
use crate::lab::scenarios;
use crate::model::address::{MailAddress, ProbeTarget};
use crate::model::step::Outcome;
use crate::probe::{ProbeOptions, Prober};
use std::process::ExitCode;
use std::sync::Arc;

pub(super) async fn run(args: DemoArgs) -> ExitCode {
    let world = match scenarios::world() {
        Ok(builder) => builder.start().await,
        Err(error) => Err(error),
    };
    let world = match world {
        Ok(world) => world,
        Err(error) => {
            eprintln!("error: cannot start the simulated world: {error}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    let prober = match world.prober() {
        Ok(prober) => prober,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    if let Some(target) = &args.check {
        let address = match ProbeTarget::parse(target) {
            Ok(ProbeTarget::Address(address)) => Ok(address),
            Ok(ProbeTarget::Domain(domain)) => MailAddress::new("someone", domain),
            Err(error) => Err(error),
        };
        let address = match address {
            Ok(address) => address,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_CANNOT_RUN);
            }
        };
        let mut report = prober.probe(&address, &demo_options()).await;
        report.findings = diagnose::explain(&report, &Expectations::default());
        if let Err(code) = print_report(&report, args.output) {
            return code;
        }
        world.stop().await;
        return if report.outcome == Outcome::Ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    init_logging(args.log_level, LogFormat::Logfmt);
    match serve_demo(&args, prober).await {
        Ok(()) => {
            world.stop().await;
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}

async fn serve_demo(args: &DemoArgs, prober: Prober) -> Result<(), String> {
    let address = parse_listen_address(&args.listen_address)?;
    let config = demo_config()?;
    let factory: ProberFactory = Arc::new(move |_| Ok(prober.clone()));
    let exporter = Exporter::start(ConfigSource::Fixed(Box::new(config)), factory, None)?;
    let listener = bind(address).await?;
    let port = listener
        .local_addr()
        .map_or_else(|_| address.port(), |a| a.port());
    let host = if address.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        address.ip().to_string()
    };
    let base = format!("http://{host}:{port}");
    println!(
        "autodiscover-exporter demo: {} simulated mail domains, no network needed.\n\n\
         Status page:  {base}/\n\
         Metrics:      {base}/metrics\n\
         Seed trace:   {base}/domains/companyb.example\n\
         Probe now:    {base}/probe?target=companyb.example&debug=true\n\
         In a shell:   autodiscover-exporter demo --check companyb.example\n\n\
         First results appear within 10 seconds. Ctrl-C stops the demo.",
        demo_domains().len()
    );
    serve_until_signal(listener, exporter, WebOptions::default()).await
}

fn demo_config() -> Result<Config, String> {
    let mut yaml = String::from(
        "defaults:\n  interval: 30s\n  timeout: 10s\n  step_timeout: 6s\n  phase_timeout: 2s\n\
         concurrency: 8\ndomains:\n",
    );
    for (domain, customer) in demo_domains() {
        yaml.push_str(&format!("  - domain: {domain}\n    email: someone@{domain}\n    labels: {{customer: \"{customer}\"}}\n"));
    }
    Config::parse(&yaml).map_err(|e| e.to_string())
}

/// Short timeouts: the simulated world answers in milliseconds, except where it must not.
fn demo_options() -> ProbeOptions {
    ProbeOptions {
        timeout: std::time::Duration::from_secs(10),
        step_timeout: std::time::Duration::from_secs(6),
        phase_timeout: std::time::Duration::from_secs(2),
        ..ProbeOptions::default()
    }
}

/// The demo's domains, with a customer label each.
fn demo_domains() -> Vec<(&'static str, &'static str)> {
    scenarios::catalogue()
        .into_iter()
        .filter(|s| s.in_demo)
        .map(|s| (s.domain, s.customer))
        .collect()
}
