//! `demo`: the simulated world of `lab::scenarios` and the exporter probing it.

use super::serve::{bind, serve_until_signal};
use super::{
    DemoArgs, EXIT_CANNOT_RUN, LogFormat, init_logging, parse_listen_address, print_report,
};
use crate::config::Config;
use crate::diagnose::{self, Expectations};
use crate::exporter::web::WebOptions;
use crate::exporter::{ConfigSource, Exporter, HistoryLocation, ProberFactory, StartOptions};
use crate::lab::scenarios;
use crate::model::address::{MailAddress, ProbeTarget};
use crate::model::step::Outcome;
use crate::probe::credentials::CredentialsPolicy;
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
        let mut options = demo_options();
        if let Some(account) = scenarios::catalogue()
            .iter()
            .find(|s| s.domain == address.domain().ascii())
            .and_then(|s| s.credentials)
        {
            match account.write_file(&credentials_dir(), address.domain().ascii()) {
                Ok(file) => {
                    options.credentials = Some(CredentialsPolicy {
                        file,
                        hosts: Vec::new(),
                    });
                }
                Err(error) => {
                    eprintln!("error: cannot write the lab's credentials file: {error}");
                    return ExitCode::from(EXIT_CANNOT_RUN);
                }
            }
        }
        let mut report = prober.probe(&address, &options).await;
        let _ = std::fs::remove_dir_all(credentials_dir());
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
    let world = Arc::new(world);
    let story = (!args.story_after.is_zero()).then(|| {
        let world = world.clone();
        let after = args.story_after;
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let (zone, records) = scenarios::provider_change();
            match world.replace_zone(zone, &records).await {
                Ok(()) => tracing::info!(
                    domain = zone,
                    "demo: the DNS provider of {zone} changed; the SRV record was lost and the new provider's web host answers on the bare domain (see its timeline)"
                ),
                Err(error) => tracing::warn!(%error, "demo: the DNS provider change failed"),
            }
        })
    });
    let result = serve_demo(&args, prober).await;
    let _ = std::fs::remove_dir_all(credentials_dir());
    if let Some(story) = story {
        story.abort();
    }
    if let Ok(world) = Arc::try_unwrap(world) {
        world.stop().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
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
    // The demo's history lives in memory: a show should leave no file behind.
    let options = StartOptions {
        shard: None,
        history: HistoryLocation::Memory,
        external_url: args.external_url.clone(),
    };
    let exporter = Exporter::start_with(ConfigSource::Fixed(Box::new(config)), factory, options)?;
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
         First results appear within 10 seconds.{} Ctrl-C stops the demo.",
        demo_domains().len(),
        if args.story_after.is_zero() {
            String::new()
        } else {
            format!(
                "\nAfter {}, companyc.example moves to a new DNS provider that loses its SRV record:\n\
                 watch its timeline at {base}/domains/companyc.example.",
                humantime::format_duration(args.story_after)
            )
        }
    );
    serve_until_signal(listener, exporter, WebOptions::default()).await
}

fn demo_config() -> Result<Config, String> {
    let mut yaml = String::from(
        "defaults:\n  interval: 30s\n  timeout: 10s\n  step_timeout: 6s\n  phase_timeout: 2s\n\
         concurrency: 8\ndomains:\n",
    );
    for scenario in scenarios::catalogue().into_iter().filter(|s| s.in_demo) {
        let (domain, customer) = (scenario.domain, scenario.customer);
        yaml.push_str(&format!("  - domain: {domain}\n    email: someone@{domain}\n    labels: {{customer: \"{customer}\"}}\n"));
        if let Some(account) = scenario.credentials {
            let file = account
                .write_file(&credentials_dir(), domain)
                .map_err(|e| format!("cannot write the lab's credentials file: {e}"))?;
            yaml.push_str(&format!("    credentials_file: \"{}\"\n", file.display()));
        }
    }
    Config::parse(&yaml).map_err(|e| e.to_string())
}

/// Where the demo writes the lab accounts' credentials files (mode 0600).
fn credentials_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("autodiscover-demo-{}", std::process::id()))
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
