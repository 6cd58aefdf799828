//! `check` and `check-config`.

use super::serve::network_prober;
use super::{CheckArgs, EXIT_CANNOT_RUN, print_report};
use crate::config::{Config, NameServer};
use crate::diagnose::{self, Expectations};
use crate::model::address::{MailAddress, ProbeTarget};
use crate::model::step::Outcome;
use crate::net::tls::TlsTrust;
use crate::probe::{ProbeOptions, Prober};
use std::path::Path;
use std::process::ExitCode;

/// Probes one target and prints the trace; exit 0 for `ok`, 1 otherwise, 2 when it cannot run.
pub(super) async fn run(args: CheckArgs) -> ExitCode {
    match prepare(&args) {
        Ok(run) => {
            let mut report = run.prober.probe(&run.address, &run.options).await;
            report.findings = diagnose::explain(&report, &run.expect);
            if let Err(code) = print_report(&report, args.output) {
                return code;
            }
            if report.outcome == Outcome::Ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}

/// What one `check` needs.
struct Prepared {
    prober: Prober,
    address: MailAddress,
    options: ProbeOptions,
    expect: Expectations,
}

fn prepare(args: &CheckArgs) -> Result<Prepared, String> {
    let config = match &args.config_file {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let target = ProbeTarget::parse(&args.target).map_err(|e| e.to_string())?;
    let address = config.address_for(&target).map_err(|e| e.to_string())?;
    let (mut options, expect) = match config.domain(target.domain()) {
        Some(entry) => (entry.probe.clone(), entry.expect.clone()),
        None => (config.ad_hoc_options(), Expectations::default()),
    };
    if let Some(timeout) = args.timeout {
        options.timeout = timeout;
        options.step_timeout = options.step_timeout.min(timeout);
        options.phase_timeout = options.phase_timeout.min(timeout);
    }
    let mut config = config;
    if !args.nameservers.is_empty() {
        config.resolver.nameservers = args.nameservers.iter().map(|a| NameServer(*a)).collect();
    }
    if let Some(ca_file) = &args.ca_file {
        config.tls.ca_file = Some(ca_file.clone());
    }
    Ok(Prepared {
        prober: network_prober(&config)?,
        address,
        options,
        expect,
    })
}

/// Validates a configuration file; exit 0 when valid, 2 otherwise.
pub(super) fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            if let Some(ca_file) = &config.tls.ca_file
                && let Err(error) = TlsTrust::load(false, Some(ca_file))
            {
                eprintln!("{}: {error}", path.display());
                return ExitCode::from(EXIT_CANNOT_RUN);
            }
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: valid ({} domains)",
                path.display(),
                config.domains.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(EXIT_CANNOT_RUN)
        }
    }
}
