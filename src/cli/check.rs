//! `check` and `check-config`.

use super::serve::network_prober;
use super::{CheckArgs, EXIT_CANNOT_RUN, print_report};
use crate::autodiscover::step::Outcome;
use crate::config::{Config, NameServer, normalize_domain};
use crate::net::tls::TlsTrust;
use crate::probe::Prober;
use std::path::Path;
use std::process::ExitCode;

/// Probes one target and prints the trace; exit 0 for `ok`, 1 otherwise, 2 when it cannot run.
pub(super) async fn run(args: CheckArgs) -> ExitCode {
    match prepare(&args) {
        Ok((prober, address, options)) => {
            let report = prober.probe(&address, &options).await;
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

fn prepare(args: &CheckArgs) -> Result<(Prober, String, crate::probe::ProbeOptions), String> {
    let config = match &args.config_file {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let target = args.target.trim();
    let (local, domain) = match target.rsplit_once('@') {
        Some((local, domain)) => (Some(local), domain),
        None => (None, target),
    };
    let domain = normalize_domain(domain)?;
    if local.is_some_and(|l| l.is_empty() || l.chars().any(char::is_whitespace)) {
        return Err(format!("{target:?} is not a mail address"));
    }
    let address = match local {
        Some(local) => format!("{local}@{domain}"),
        None => config.address_for(&domain),
    };
    let mut options = match config.domain(&domain) {
        Some(entry) => entry.probe.clone(),
        None => config.ad_hoc_options(),
    };
    if let Some(timeout) = args.timeout {
        options.timeout = timeout;
    }
    let mut config = config;
    if !args.nameservers.is_empty() {
        config.resolver.nameservers = args.nameservers.iter().map(|a| NameServer(*a)).collect();
    }
    if let Some(ca_file) = &args.ca_file {
        config.tls.ca_file = Some(ca_file.clone());
    }
    Ok((network_prober(&config)?, address, options))
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
