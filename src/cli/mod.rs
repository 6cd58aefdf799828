//! Command-line interface: flags follow Prometheus conventions (`--config.file`,
//! `--web.listen-address`, ...). `serve` is the default command.

mod check;
mod demo;
mod logfmt;
mod serve;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The default listen address (outside the fully allocated 9100-9999 exporter range).
pub const DEFAULT_LISTEN_ADDRESS: &str = ":10195";

/// Exit code: the command could not run (usage, configuration, setup).
pub const EXIT_CANNOT_RUN: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "autodiscover-exporter",
    version,
    about = "Prometheus exporter that walks Outlook's Autodiscover path for every mailbox domain",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Probe the configured domains continuously and serve metrics (the default).
    Serve(ServeArgs),
    /// Probe one address or domain now and explain what Outlook would do.
    Check(CheckArgs),
    /// Validate a configuration file.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Start a simulated world of mail domains and the exporter probing it (no network needed).
    Demo(DemoArgs),
}

/// Flags of `serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long = "config.file", env = "AUTODISCOVER_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Address to listen on (`:PORT` listens on all interfaces).
    #[arg(long = "web.listen-address", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,
    /// Prometheus exporter-toolkit web configuration (TLS, basic auth).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,
    /// Probe and export only shard I of N (1-based) of the configured domains.
    #[arg(long = "shard", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// Allow `POST /-/reload` (SIGHUP always reloads).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// How long open requests may finish after SIGTERM or SIGINT.
    #[arg(
        long = "web.shutdown-grace-period",
        default_value = "30s",
        value_parser = parse_grace_period
    )]
    pub shutdown_grace: Duration,
    /// The URL users reach the exporter at (behind a proxy, an ingress): links on the status
    /// page and in alerts use it. Empty: relative links.
    #[arg(long = "web.external-url", default_value = "", value_parser = parse_external_url)]
    pub external_url: String,
    /// Log level.
    #[arg(long = "log.level", default_value = "info", value_enum)]
    pub log_level: LogLevel,
    /// Log format.
    #[arg(long = "log.format", default_value = "logfmt", value_enum)]
    pub log_format: LogFormat,
}

/// Flags of `check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A mailbox address (`user@domain`) or a domain.
    pub target: String,
    /// Configuration file (resolver, trust, the domain's policy).
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,
    /// DNS server to ask, `IP:PORT` (repeatable; default: the configuration's or the system's).
    #[arg(long = "nameserver", value_parser = parse_nameserver)]
    pub nameservers: Vec<SocketAddr>,
    /// Extra trusted root certificates (PEM), added to the system roots.
    #[arg(long = "ca-file")]
    pub ca_file: Option<PathBuf>,
    /// Output format.
    #[arg(long = "output", default_value = "text", value_enum)]
    pub output: Output,
    /// Budget of the whole probe.
    #[arg(long = "timeout", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
}

/// Flags of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long = "web.listen-address", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,
    /// Log level.
    #[arg(long = "log.level", default_value = "info", value_enum)]
    pub log_level: LogLevel,
    /// Instead of serving, probe one domain of the simulated world, print its trace and exit.
    #[arg(long = "check", value_name = "DOMAIN_OR_ADDRESS")]
    pub check: Option<String>,
    /// Output format of `--check`.
    #[arg(long = "output", default_value = "text", value_enum)]
    pub output: Output,
    /// After this long, companyc.example moves to a new DNS provider and loses its SRV record
    /// (the seed's story, for the timeline); 0 keeps the world as it is.
    #[arg(long = "story-after", default_value = "90s", value_parser = humantime::parse_duration)]
    pub story_after: Duration,
    /// The URL users reach the demo at (links on the status page).
    #[arg(long = "web.external-url", default_value = "", value_parser = parse_external_url)]
    pub external_url: String,
}

/// An http(s) URL without query or fragment, or empty.
fn parse_external_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "{text:?} must be an http or https URL without query, e.g. https://autodiscover.example.net/exporter"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// `check` output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The step-by-step trace.
    Text,
    /// The ProbeReport as JSON.
    Json,
}

/// Log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// Normal.
    Info,
    /// Problems.
    Warn,
    /// Failures only.
    Error,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` lines.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    limit_malloc_arenas();
    let workers = match worker_threads(std::env::var("TOKIO_WORKER_THREADS").ok().as_deref()) {
        Ok(workers) => workers,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(workers)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    match cli.command {
        Some(Command::Check(args)) => runtime.block_on(check::run(args)),
        Some(Command::CheckConfig { file }) => check::check_config(&file),
        Some(Command::Demo(args)) => runtime.block_on(demo::run(args)),
        Some(Command::Serve(args)) => runtime.block_on(serve::run(args)),
        None => runtime.block_on(serve::run(cli.serve)),
    }
}

/// Probing waits on the network: a few threads keep up with 100,000 domains, and every thread
/// that allocates may cost an allocator arena.
const MAX_WORKER_THREADS: usize = 4;
/// The most worker threads `TOKIO_WORKER_THREADS` may ask for.
const MAX_CONFIGURED_WORKER_THREADS: usize = 64;

/// The runtime's worker threads: `TOKIO_WORKER_THREADS` when set, else one fewer than the CPUs
/// (at least one, at most [`MAX_WORKER_THREADS`]). A probe spends most of its CPU in TLS and the
/// kernel's network stack; the CPU left over runs that stack's receive work, the gzip and history
/// threads and the servers on the same machine, and a worker that would mostly wake up to find
/// nothing to steal costs more than it gives (measured on the benchmark world with the same
/// binary interleaved: 2 workers on 2 CPUs used 7-14 % more CPU per check set than 1 in steady
/// state, about the same for first probes).
fn worker_threads(configured: Option<&str>) -> Result<usize, String> {
    match configured {
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_CONFIGURED_WORKER_THREADS).contains(&n) => Ok(n),
            _ => Err(format!(
                "TOKIO_WORKER_THREADS={text:?}: expected a number of threads from 1 to \
                 {MAX_CONFIGURED_WORKER_THREADS}"
            )),
        },
        None => Ok(std::thread::available_parallelism()
            .map_or(2, usize::from)
            .saturating_sub(1)
            .clamp(1, MAX_WORKER_THREADS)),
    }
}
/// Threads for blocking work (bcrypt, reloads, the gzip `/metrics` rebuilds).
const MAX_BLOCKING_THREADS: usize = 16;
/// glibc malloc arenas: by default up to 8 per core, each keeping its own freed memory. Probes
/// allocate and free on every worker and blocking thread; with one arena per thread the freed
/// pieces of thousands of probes stay spread over many heaps (measured at 10,000 domains: 228
/// MiB resident with the default, 201 MiB with one arena). Two arenas keep most of that saving
/// without making every thread wait on one lock. `MALLOC_ARENA_MAX` in the environment wins.
const MALLOC_ARENAS: i32 = 2;
/// Blocks from this size up get their own mapping, given back to the kernel when freed. glibc
/// starts at 128 KiB but raises the threshold (up to 32 MiB) each time such a block is freed, so
/// after the first few scrapes the multi-megabyte buffers of `/metrics` would land in the heap
/// and keep it large. A fixed threshold keeps them out. `MALLOC_MMAP_THRESHOLD_` wins.
const MALLOC_MMAP_THRESHOLD: i32 = 256 * 1024;

fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets a tunable of glibc's allocator; it runs before the
            // runtime starts any thread, and an unaccepted value is ignored (it returns 0).
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
            }
        }
    }
}

fn parse_nameserver(text: &str) -> Result<SocketAddr, String> {
    crate::config::parse_nameserver(text)
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    use crate::config::{MAX_TIMEOUT, MIN_TIMEOUT};
    let timeout = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        return Err(format!(
            "{text} is out of range: between {} and {}",
            humantime::format_duration(MIN_TIMEOUT),
            humantime::format_duration(MAX_TIMEOUT)
        ));
    }
    Ok(timeout)
}

fn parse_grace_period(text: &str) -> Result<Duration, String> {
    let grace = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if grace > Duration::from_secs(3600) {
        return Err(format!("{text} is longer than 1h"));
    }
    Ok(grace)
}

fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not I/N (e.g. 1/3)"))?;
    let index: u32 = index
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not I/N"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not I/N"))?;
    if count == 0 || index == 0 || index > count {
        return Err(format!("shard {text} must satisfy 1 <= I <= N"));
    }
    Ok((index, count))
}

/// Parses a Prometheus-style listen address (`:10195`, `127.0.0.1:10195`, `[::1]:10195`).
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse()
        .map_err(|_| format!("listen address {text:?} is not HOST:PORT"))
}

/// Prints a report as the trace (coloured on a terminal unless `NO_COLOR` is set) or as JSON.
fn print_report(
    report: &crate::model::report::ProbeReport,
    output: Output,
) -> Result<(), ExitCode> {
    use crate::render::trace::{self, Colour};
    use std::io::IsTerminal;
    match output {
        Output::Json => match serde_json::to_string_pretty(report) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("error: cannot encode the report: {error}");
                return Err(ExitCode::from(EXIT_CANNOT_RUN));
            }
        },
        Output::Text => {
            let colour =
                if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
                    Colour::On
                } else {
                    Colour::Off
                };
            print!("{}", trace::render(report, colour));
        }
    }
    Ok(())
}

/// Sets up logging.
pub fn init_logging(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("autodiscover_exporter", level)
        .with_default(tracing::Level::WARN.min(level));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(logfmt::RepeatLimit::default());
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(|| logfmt::EscapingWriter(std::io::stderr())),
            )
            .try_init(),
        LogFormat::Logfmt => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .event_format(logfmt::Logfmt)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_come_from_the_environment_or_the_cpus() {
        assert_eq!(worker_threads(Some("3")), Ok(3));
        assert_eq!(worker_threads(Some(" 1 ")), Ok(1));
        for bad in ["0", "-1", "two", "", "65", "99999999999999999999999"] {
            let error = worker_threads(Some(bad)).unwrap_err();
            assert!(error.contains("TOKIO_WORKER_THREADS"), "{error}");
        }
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let default = worker_threads(None).unwrap();
        assert!((1..=MAX_WORKER_THREADS).contains(&default));
        assert_eq!(default, (cpus - 1).clamp(1, MAX_WORKER_THREADS));
    }

    #[test]
    fn shards_and_listen_addresses() {
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
        assert_eq!(parse_listen_address(":10195").unwrap().port(), 10195);
        assert!(parse_listen_address("[::1]:9").is_ok());
        assert!(parse_listen_address("nope").is_err());
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_timeout("18446744073709551615s").is_err());
        assert!(parse_timeout("1ns").is_err());
        assert_eq!(parse_grace_period("0s"), Ok(Duration::ZERO));
        assert!(parse_grace_period("18446744073709551615s").is_err());
    }

    #[test]
    fn serve_is_the_default_command() {
        let cli = Cli::try_parse_from(["x", "--config.file", "c.yml"]).unwrap();
        assert!(cli.command.is_none());
        assert!(!cli.serve.enable_lifecycle);
        assert_eq!(cli.serve.shutdown_grace, Duration::from_secs(30));
        let explicit = Cli::try_parse_from([
            "x",
            "serve",
            "--web.enable-lifecycle",
            "--web.shutdown-grace-period",
            "5s",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = explicit.command else {
            panic!("not serve")
        };
        assert!(args.enable_lifecycle);
        assert_eq!(args.shutdown_grace, Duration::from_secs(5));
        assert_eq!(cli.serve.config_file, Some(PathBuf::from("c.yml")));
        let cli = Cli::try_parse_from([
            "x",
            "check",
            "a@b.example",
            "--nameserver",
            "127.0.0.1:53",
            "--output",
            "json",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Check(_))));
    }
}
