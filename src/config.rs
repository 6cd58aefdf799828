//! The YAML configuration: schema, defaults, and validation with line and column in every error.

use crate::diagnose::Expectations;
use crate::model::address::{Domain, MailAddress, NameError, ProbeTarget};
use crate::model::labels::RESERVED_LABELS;
use crate::model::step::StepId;
use crate::net::dns::DnsProtocol;
use crate::probe::credentials::{Credentials, CredentialsPolicy};
use crate::probe::microsoft365::Microsoft365Settings;
use crate::probe::{self as probe_defaults, ProbeOptions};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The probe address's local part when a domain has no `email`.
pub const DEFAULT_LOCAL_PART: &str = "autodiscover-probe";

/// Probes running at once when `concurrency` is not set.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Shortest probe interval: a smaller one probes in a tight loop.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Longest probe interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 86_400);
/// Shortest timeout of any kind (probe, step, phase, DNS query).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest timeout of any kind.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest Microsoft 365 answer cache lifetime.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(7 * 86_400);
/// Largest configuration file read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most YAML nodes (scalars, sequences, mappings) in a configuration: a domain with an email and
/// one label is 9 nodes, so this allows 200,000 such domains with room to spare.
pub const MAX_YAML_NODES: usize = 2_000_000;
/// Most YAML parser events (nodes plus collection ends).
pub const MAX_YAML_EVENTS: usize = 4_000_000;

/// A configuration that failed to load, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when loaded from one.
    pub path: Option<PathBuf>,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self
            .path
            .as_ref()
            .map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
        if self.line > 0 {
            write!(f, "{path}:{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(f, "{path}: {}", self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A valid but odd setting, with where: logged at load and printed by `check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning(pub ConfigError);

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Probe settings for domains that do not override them.
    pub defaults: Defaults,
    /// DNS settings.
    pub resolver: ResolverSettings,
    /// Trust settings.
    pub tls: TlsSettings,
    /// Probes running at once.
    pub concurrency: usize,
    /// `/probe` accepts any target, not only configured domains.
    pub allow_any_target: bool,
    /// Loopback, private and unique-local addresses are refused like link-local ones.
    pub refuse_private_addresses: bool,
    /// How Microsoft 365 is asked.
    pub microsoft365: Microsoft365Settings,
    /// Where and how long the history of changes is kept.
    pub storage: StorageSettings,
    /// The domains, in file order.
    pub domains: Vec<DomainConfig>,
    /// Valid but odd settings.
    pub warnings: Vec<ConfigWarning>,
}

/// `microsoft365:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMicrosoft365 {
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    cache_ttl: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    max_queries_per_second: Option<Spanned<f64>>,
}

/// `defaults:`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// How often each domain is probed.
    pub interval: Duration,
    /// Budget of a whole probe.
    pub timeout: Duration,
    /// Budget of one step.
    pub step_timeout: Duration,
    /// Budget of one network phase.
    pub phase_timeout: Duration,
    /// Local part of the probe address.
    pub local_part: String,
    /// Steps Outlook may use.
    pub steps: Vec<StepId>,
    /// Probe credentials (YAML with `username` and `password`) for domains without their own,
    /// resolved against the configuration's directory.
    pub credentials_file: Option<PathBuf>,
}

/// `defaults:` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default, deserialize_with = "present")]
    interval: Option<Spanned<HumanDuration>>,
    #[serde(default, deserialize_with = "present")]
    timeout: Option<Spanned<HumanDuration>>,
    #[serde(default, deserialize_with = "present")]
    step_timeout: Option<Spanned<HumanDuration>>,
    #[serde(default, deserialize_with = "present")]
    phase_timeout: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    local_part: Option<Spanned<String>>,
    #[serde(default)]
    steps: Option<Vec<StepId>>,
    /// Probe credentials (YAML with `username` and `password`) for domains without their own.
    #[serde(default)]
    credentials_file: Option<Spanned<PathBuf>>,
}

/// An optional key that, when written, must have a value (`interval:` alone is an error, not
/// the default).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A duration as humans write it (`30s`, `5m`, `1h30m`, `1500ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim())
            .map(Self)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration ({e}); write e.g. 500ms, 30s, 5m, 1h"
                ))
            })
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
            step_timeout: default_step_timeout(),
            phase_timeout: default_phase_timeout(),
            local_part: default_local_part(),
            steps: all_steps(),
            credentials_file: None,
        }
    }
}

/// `resolver:`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolverSettings {
    /// Name servers as `ip:port`; empty for the system resolver.
    pub nameservers: Vec<NameServer>,
    /// Transport to the name servers.
    pub protocol: DnsProtocol,
    /// Timeout of one DNS query attempt.
    pub timeout: Duration,
}

/// `resolver:` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolver {
    #[serde(default)]
    nameservers: Vec<NameServer>,
    #[serde(default)]
    protocol: DnsProtocol,
    #[serde(default, deserialize_with = "present")]
    timeout: Option<Spanned<HumanDuration>>,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            protocol: DnsProtocol::default(),
            timeout: default_dns_timeout(),
        }
    }
}

/// A name server address, `ip:port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameServer(pub SocketAddr);

impl<'de> Deserialize<'de> for NameServer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_nameserver(&text)
            .map(NameServer)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `ip:port` (or a bare IP, port 53).
pub fn parse_nameserver(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("name server {text:?} is not an IP:PORT address (e.g. 192.0.2.53:53)"))
}

/// `tls:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Extra trusted roots (PEM).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Trust the system's roots as well.
    #[serde(default = "yes")]
    pub system_roots: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            ca_file: None,
            system_roots: true,
        }
    }
}

/// The history file when `storage.path` is not set (in the working directory).
pub const DEFAULT_HISTORY_FILE: &str = "autodiscover-history.db";

/// `storage:`: the history of changes on disk.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// The SQLite file; [`DEFAULT_HISTORY_FILE`] in the working directory when unset.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Changes older than this are deleted.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Duration,
    /// At most this many changes are kept per domain (the oldest go first).
    #[serde(default = "default_max_events")]
    pub max_events_per_domain: usize,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            path: None,
            retention: default_retention(),
            max_events_per_domain: default_max_events(),
        }
    }
}

impl StorageSettings {
    /// The file to use: the configured path, or the default file name (one per shard, so
    /// replicas sharing a directory keep apart).
    pub fn resolved_path(&self, shard: Option<(u32, u32)>) -> PathBuf {
        match (&self.path, shard) {
            (Some(path), _) => path.clone(),
            (None, None) => PathBuf::from(DEFAULT_HISTORY_FILE),
            (None, Some((index, count))) => {
                PathBuf::from(format!("autodiscover-history-shard-{index}-of-{count}.db"))
            }
        }
    }
}

fn default_retention() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}
fn default_max_events() -> usize {
    1000
}

/// One configured domain, with its defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainConfig {
    /// The mailbox domain.
    pub domain: Domain,
    /// The probe address.
    pub address: MailAddress,
    /// What the admin expects.
    pub expect: Expectations,
    /// Extra labels on every series of the domain.
    pub labels: BTreeMap<String, String>,
    /// How often it is probed.
    pub interval: Duration,
    /// How a probe runs.
    pub probe: ProbeOptions,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    resolver: RawResolver,
    #[serde(default)]
    tls: TlsSettings,
    #[serde(default)]
    concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    allow_any_target: bool,
    #[serde(default)]
    refuse_private_addresses: bool,
    #[serde(default)]
    microsoft365: Option<RawMicrosoft365>,
    #[serde(default)]
    storage: StorageSettings,
    #[serde(default)]
    domains: Vec<RawDomain>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    domain: Spanned<String>,
    #[serde(default)]
    email: Option<Spanned<String>>,
    #[serde(default)]
    labels: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    steps: Option<Vec<StepId>>,
    #[serde(default, deserialize_with = "present")]
    interval: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    expect: Option<Expectations>,
    #[serde(default)]
    credentials_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    credentials_hosts: Option<Spanned<Vec<String>>>,
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_timeout() -> Duration {
    probe_defaults::DEFAULT_TIMEOUT
}
fn default_step_timeout() -> Duration {
    probe_defaults::DEFAULT_STEP_TIMEOUT
}
fn default_phase_timeout() -> Duration {
    probe_defaults::DEFAULT_PHASE_TIMEOUT
}
fn default_dns_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_local_part() -> String {
    DEFAULT_LOCAL_PART.to_owned()
}
fn all_steps() -> Vec<StepId> {
    StepId::ALL.to_vec()
}
fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Self {
            defaults: Defaults::default(),
            resolver: ResolverSettings::default(),
            tls: TlsSettings::default(),
            concurrency: DEFAULT_CONCURRENCY,
            allow_any_target: false,
            refuse_private_addresses: false,
            microsoft365: Microsoft365Settings::default(),
            storage: StorageSettings::default(),
            domains: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl Config {
    /// Loads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let in_file = |message: String| ConfigError {
            path: Some(path.to_owned()),
            line: 0,
            column: 0,
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| in_file(format!("cannot read the file: {e}")))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(in_file(format!(
                "the file is {size} bytes; a configuration may be at most {MAX_FILE_BYTES} bytes"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| in_file(format!("cannot read the file: {e}")))?;
        let mut config = Self::parse_in(&text, path.parent()).map_err(|mut e| {
            e.path = Some(path.to_owned());
            e
        })?;
        for warning in &mut config.warnings {
            warning.0.path = Some(path.to_owned());
        }
        Ok(config)
    }

    /// Parses and validates YAML text; relative credentials files are relative to the
    /// working directory.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_in(text, None)
    }

    /// Parses and validates YAML text; relative credentials files are relative to `base`.
    pub fn parse_in(text: &str, base: Option<&Path>) -> Result<Self, ConfigError> {
        Self::parse_within(text, base, MAX_YAML_NODES, MAX_YAML_EVENTS)
    }

    fn parse_within(
        text: &str,
        base: Option<&Path>,
        max_nodes: usize,
        max_events: usize,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            let mut budget = serde_saphyr::Budget::default();
            budget.max_nodes = max_nodes;
            budget.max_events = max_events;
            let options = serde_saphyr::options! { budget: Some(budget) };
            serde_saphyr::from_str_with_options(text, options)
                .map_err(|e| yaml_error(&e, max_nodes))?
        };
        validate(raw, base)
    }

    /// The domain entry for `domain`, if configured.
    pub fn domain(&self, domain: &Domain) -> Option<&DomainConfig> {
        self.domains.iter().find(|d| &d.domain == domain)
    }

    /// Probe options for a domain that is not configured (CLI `check`, `/probe` of any target).
    pub fn ad_hoc_options(&self) -> ProbeOptions {
        ProbeOptions {
            timeout: self.defaults.timeout,
            step_timeout: self.defaults.step_timeout,
            phase_timeout: self.defaults.phase_timeout,
            steps: self.defaults.steps.clone(),
            // Credentials only ever go to configured domains: an ad-hoc target (`/probe` with
            // `allow_any_target`) could otherwise be anyone's server asking for them.
            credentials: None,
        }
    }

    /// The probe address for a target: the address itself, the configured address of a
    /// configured domain, or the default local part at the domain.
    pub fn address_for(&self, target: &ProbeTarget) -> Result<MailAddress, NameError> {
        match target {
            ProbeTarget::Address(address) => Ok(address.clone()),
            ProbeTarget::Domain(domain) => match self.domain(domain) {
                Some(entry) => Ok(entry.address.clone()),
                None => MailAddress::new(&self.defaults.local_part, domain.clone()),
            },
        }
    }
}

/// YAML nodes of a domain entry with an email and one label.
const NODES_PER_DOMAIN: usize = 9;

fn yaml_error(error: &serde_saphyr::Error, max_nodes: usize) -> ConfigError {
    let location = error.location();
    let message = match error.without_snippet() {
        serde_saphyr::Error::Budget { breach, .. } => format!(
            "the configuration is too large for the YAML reader ({breach:?}): at most \
             {max_nodes} YAML nodes, about {} domains with an email and a label each; split \
             the domains over several exporters",
            max_nodes / NODES_PER_DOMAIN
        ),
        other => strip_location(&other.to_string()),
    };
    ConfigError {
        path: None,
        line: location.as_ref().map_or(0, Location::line),
        column: location.as_ref().map_or(0, Location::column),
        message,
    }
}

fn strip_location(message: &str) -> String {
    // serde-saphyr prefixes "line N column M: "; the error carries the numbers already.
    let mut text = message.trim().trim_start_matches("error: ");
    if let Some(rest) = text.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
    {
        text = after.trim();
    }
    let text = text.lines().next().unwrap_or(text);
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_owned(),
        None => text.to_owned(),
    }
}

fn at(location: &Location, message: String) -> ConfigError {
    ConfigError {
        path: None,
        line: location.line(),
        column: location.column(),
        message,
    }
}

/// A duration setting as written, with where (no location when it was left out).
struct DurationSetting {
    name: &'static str,
    value: Duration,
    location: Option<Location>,
}

impl DurationSetting {
    fn new(name: &'static str, raw: Option<Spanned<HumanDuration>>, default: Duration) -> Self {
        match raw {
            Some(spanned) => Self {
                name,
                value: spanned.value.0,
                location: Some(spanned.referenced),
            },
            None => Self {
                name,
                value: default,
                location: None,
            },
        }
    }

    fn location(&self) -> Location {
        self.location.unwrap_or(Location::UNKNOWN)
    }

    fn within(&self, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
        if self.value < min || self.value > max {
            return Err(at(
                &self.location(),
                format!(
                    "{} {} is out of range: it must be between {} and {}",
                    self.name,
                    humantime::format_duration(self.value),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            ));
        }
        Ok(self.value)
    }

    /// `self` must not exceed `other`.
    fn at_most(&self, other: &Self) -> Result<(), ConfigError> {
        if self.value > other.value {
            return Err(at(
                &self.location(),
                format!(
                    "{} {} is longer than {} {}",
                    self.name,
                    humantime::format_duration(self.value),
                    other.name,
                    humantime::format_duration(other.value)
                ),
            ));
        }
        Ok(())
    }
}

fn validate(raw: RawConfig, base: Option<&Path>) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    let defaults = validate_defaults(raw.defaults, base, &mut warnings)?;
    let resolver_timeout = DurationSetting::new(
        "resolver.timeout",
        raw.resolver.timeout,
        default_dns_timeout(),
    );
    let resolver = ResolverSettings {
        nameservers: raw.resolver.nameservers,
        protocol: raw.resolver.protocol,
        timeout: resolver_timeout.within(MIN_TIMEOUT, MAX_TIMEOUT)?,
    };
    if resolver.timeout > defaults.phase_timeout {
        warnings.push(warning(
            &resolver_timeout.location(),
            format!(
                "resolver.timeout {} is longer than defaults.phase_timeout {}: every DNS query \
                 is cut off at the phase timeout",
                humantime::format_duration(resolver.timeout),
                humantime::format_duration(defaults.phase_timeout)
            ),
        ));
    }
    let microsoft365 = validate_microsoft365(raw.microsoft365)?;
    let concurrency = match &raw.concurrency {
        Some(spanned) if spanned.value == 0 || spanned.value > 10_000 => {
            return Err(at(
                &spanned.referenced,
                "concurrency must be between 1 and 10000".into(),
            ));
        }
        Some(spanned) => spanned.value,
        None => DEFAULT_CONCURRENCY,
    };
    let mut seen = HashSet::new();
    let mut domains = Vec::with_capacity(raw.domains.len());
    for entry in raw.domains {
        let location = entry.domain.referenced;
        let domain =
            Domain::parse(&entry.domain.value).map_err(|e| at(&location, e.to_string()))?;
        if !seen.insert(domain.clone()) {
            return Err(at(&location, format!("domain {domain} is listed twice")));
        }
        let address = match &entry.email {
            Some(email) => {
                let address = MailAddress::parse(&email.value)
                    .map_err(|e| at(&email.referenced, e.to_string()))?;
                if address.domain() != &domain {
                    return Err(at(
                        &email.referenced,
                        format!("email {address} is not in the domain {domain}"),
                    ));
                }
                address
            }
            None => MailAddress::new(&defaults.local_part, domain.clone())
                .map_err(|e| at(&location, e.to_string()))?,
        };
        let labels = match entry.labels {
            Some(labels) => {
                for name in labels.value.keys() {
                    validate_label_name(name).map_err(|m| at(&labels.referenced, m))?;
                }
                labels.value
            }
            None => BTreeMap::new(),
        };
        let interval = match entry.interval {
            Some(spanned) => {
                let setting = DurationSetting {
                    name: "interval",
                    value: spanned.value.0,
                    location: Some(spanned.referenced),
                };
                let interval = setting.within(MIN_INTERVAL, MAX_INTERVAL)?;
                if interval < defaults.timeout {
                    warnings.push(warning(
                        &spanned.referenced,
                        interval_warning(&format!("interval of {domain}"), interval, &defaults),
                    ));
                }
                interval
            }
            None => defaults.interval,
        };
        let credentials_file = match &entry.credentials_file {
            Some(file) => Some(credentials_path(file, base)?),
            None => defaults.credentials_file.clone(),
        };
        let mut credentials_hosts = Vec::new();
        if let Some(hosts) = &entry.credentials_hosts {
            for host in &hosts.value {
                let parsed = Domain::parse(host)
                    .map_err(|e| at(&hosts.referenced, format!("credentials_hosts: {e}")))?;
                credentials_hosts.push(parsed.ascii().to_owned());
            }
        }
        domains.push(DomainConfig {
            address,
            labels,
            interval,
            probe: ProbeOptions {
                timeout: defaults.timeout,
                step_timeout: defaults.step_timeout,
                phase_timeout: defaults.phase_timeout,
                steps: entry.steps.unwrap_or_else(|| defaults.steps.clone()),
                credentials: credentials_file.map(|file| CredentialsPolicy {
                    file,
                    hosts: credentials_hosts,
                }),
            },
            expect: entry.expect.unwrap_or_default(),
            domain,
        });
    }
    Ok(Config {
        defaults,
        resolver,
        tls: raw.tls,
        concurrency,
        allow_any_target: raw.allow_any_target,
        refuse_private_addresses: raw.refuse_private_addresses,
        microsoft365,
        storage: validate_storage(raw.storage)?,
        domains,
        warnings,
    })
}

/// Resolves a credentials file against the configuration's directory and checks that it can
/// be used (mode 0600, `username` and `password`). The credentials are dropped (and wiped)
/// right away: probes read the file again when they need it, so a changed password needs no
/// reload.
fn credentials_path(file: &Spanned<PathBuf>, base: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let path = match base {
        Some(base) if file.value.is_relative() => base.join(&file.value),
        _ => file.value.clone(),
    };
    Credentials::load(&path).map_err(|e| at(&file.referenced, e.to_string()))?;
    Ok(path)
}

fn validate_storage(storage: StorageSettings) -> Result<StorageSettings, ConfigError> {
    let nowhere = Location::UNKNOWN;
    if storage.retention < Duration::from_secs(3600) {
        return Err(at(&nowhere, "storage.retention must be at least 1h".into()));
    }
    if storage.max_events_per_domain == 0 || storage.max_events_per_domain > 1_000_000 {
        return Err(at(
            &nowhere,
            "storage.max_events_per_domain must be between 1 and 1000000".into(),
        ));
    }
    if storage
        .path
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return Err(at(&nowhere, "storage.path must not be empty".into()));
    }
    Ok(storage)
}

/// Ranges: interval 10s..=7d, every timeout 100ms..=10m, phase ≤ step ≤ probe timeout. A step
/// or phase timeout left out shrinks to fit a shorter probe or step timeout.
fn validate_defaults(
    raw: RawDefaults,
    base: Option<&Path>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Defaults, ConfigError> {
    let interval = DurationSetting::new("defaults.interval", raw.interval, default_interval());
    let timeout = DurationSetting::new("defaults.timeout", raw.timeout, default_timeout());
    let timeout_value = timeout.within(MIN_TIMEOUT, MAX_TIMEOUT)?;
    let step = DurationSetting::new(
        "defaults.step_timeout",
        raw.step_timeout,
        default_step_timeout().min(timeout_value),
    );
    let step_value = step.within(MIN_TIMEOUT, MAX_TIMEOUT)?;
    step.at_most(&timeout)?;
    let phase = DurationSetting::new(
        "defaults.phase_timeout",
        raw.phase_timeout,
        default_phase_timeout().min(step_value),
    );
    let phase_value = phase.within(MIN_TIMEOUT, MAX_TIMEOUT)?;
    phase.at_most(&step)?;
    let local_part = match raw.local_part {
        Some(spanned) => {
            let domain =
                Domain::parse("example.com").map_err(|e| at(&spanned.referenced, e.to_string()))?;
            MailAddress::new(&spanned.value, domain)
                .map_err(|e| at(&spanned.referenced, e.to_string()))?;
            spanned.value
        }
        None => default_local_part(),
    };
    let defaults = Defaults {
        interval: interval.within(MIN_INTERVAL, MAX_INTERVAL)?,
        timeout: timeout_value,
        step_timeout: step_value,
        phase_timeout: phase_value,
        local_part,
        steps: raw.steps.unwrap_or_else(all_steps),
        credentials_file: match &raw.credentials_file {
            Some(file) => Some(credentials_path(file, base)?),
            None => None,
        },
    };
    if defaults.interval < defaults.timeout {
        warnings.push(warning(
            &interval.location(),
            interval_warning("defaults.interval", defaults.interval, &defaults),
        ));
    }
    if step_value < phase_value * 2 {
        warnings.push(warning(
            &step.location(),
            format!(
                "defaults.step_timeout {} is less than two phase timeouts ({}): a slow server \
                 can use up a step before its TLS handshake or request gets a chance",
                humantime::format_duration(step_value),
                humantime::format_duration(phase_value)
            ),
        ));
    }
    Ok(defaults)
}

fn interval_warning(name: &str, interval: Duration, defaults: &Defaults) -> String {
    format!(
        "{name} {} is shorter than defaults.timeout {}: a slow probe delays the next one, so \
         the real interval can be longer",
        humantime::format_duration(interval),
        humantime::format_duration(defaults.timeout)
    )
}

fn warning(location: &Location, message: String) -> ConfigWarning {
    ConfigWarning(at(location, message))
}

fn validate_microsoft365(
    raw: Option<RawMicrosoft365>,
) -> Result<Microsoft365Settings, ConfigError> {
    let mut settings = Microsoft365Settings::default();
    let Some(raw) = raw else {
        return Ok(settings);
    };
    if let Some(url) = raw.url {
        let text = url.value.trim().trim_end_matches('/');
        let parsed = url::Url::parse(text).map_err(|e| {
            at(
                &url.referenced,
                format!("microsoft365.url {text:?} is not a URL: {e}"),
            )
        })?;
        if parsed.scheme() != "https"
            || parsed.host_str().is_none()
            || !parsed.username().is_empty()
            || parsed.query().is_some()
        {
            return Err(at(
                &url.referenced,
                format!(
                    "microsoft365.url {text:?} must be an https URL without credentials or query"
                ),
            ));
        }
        settings.url = text.to_owned();
    }
    if let Some(ttl) = raw.cache_ttl {
        if ttl.value.0 > MAX_CACHE_TTL {
            return Err(at(
                &ttl.referenced,
                format!(
                    "microsoft365.cache_ttl {} must be at most {}",
                    humantime::format_duration(ttl.value.0),
                    humantime::format_duration(MAX_CACHE_TTL)
                ),
            ));
        }
        settings.cache_ttl = ttl.value.0;
    }
    if let Some(rate) = raw.max_queries_per_second {
        if !(rate.value > 0.0 && rate.value <= 1000.0) {
            return Err(at(
                &rate.referenced,
                "microsoft365.max_queries_per_second must be above 0 and at most 1000".into(),
            ));
        }
        settings.queries_per_second = rate.value;
    }
    Ok(settings)
}

fn validate_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || name.starts_with("__") {
        return Err(format!(
            "label name {name:?} is not a valid Prometheus label name"
        ));
    }
    if RESERVED_LABELS.contains(&name) {
        return Err(format!("label name {name:?} is set by the exporter itself"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_loads() {
        let config = Config::parse(
            "defaults:\n  interval: 5m\nresolver:\n  nameservers: [\"192.0.2.53:53\"]\n\
             domains:\n  - domain: CompanyB.com\n    email: someone@companyb.com\n    labels: {customer: CompanyB}\n",
        )
        .unwrap();
        assert_eq!(config.defaults.interval, Duration::from_secs(300));
        assert_eq!(
            config.resolver.nameservers[0].0,
            "192.0.2.53:53".parse().unwrap()
        );
        let domain = &config.domains[0];
        assert_eq!(domain.domain.ascii(), "companyb.com");
        assert_eq!(domain.address.to_string(), "someone@companyb.com");
        assert_eq!(domain.labels["customer"], "CompanyB");
        assert_eq!(domain.probe.steps, StepId::ALL.to_vec());
    }

    #[test]
    fn defaults_apply_per_domain() {
        let config = Config::parse(
            "defaults:\n  local_part: probe\n  steps: [autodiscover_domain, srv_record]\n  interval: 1m\n\
             domains:\n  - domain: a.example\n  - domain: b.example\n    interval: 30s\n    steps: [srv_record]\n    expect: {endpoint_step: srv_record}\n",
        )
        .unwrap();
        assert_eq!(config.domains[0].address.to_string(), "probe@a.example");
        assert_eq!(config.domains[0].interval, Duration::from_secs(60));
        assert_eq!(
            config.domains[0].probe.steps,
            vec![StepId::AutodiscoverDomain, StepId::SrvRecord]
        );
        assert_eq!(config.domains[1].interval, Duration::from_secs(30));
        assert_eq!(
            config.domains[1].expect.endpoint_step,
            Some(StepId::SrvRecord)
        );
    }

    fn error(text: &str) -> ConfigError {
        Config::parse(text).unwrap_err()
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let e = error("defaults:\n  interval: 5m\n  intervall: 1m\n");
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(e.message.contains("intervall"), "{e}");
        assert!(!e.message.contains("at line"), "{e}");
        let e = error("domains:\n  - domain: a.example\n    lables: {}\n");
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn semantic_errors_carry_the_location() {
        let e = error("domains:\n  - domain: a.example\n  - domain: A.example.\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("twice"), "{e}");
        let e = error("domains:\n  - domain: \"not a domain\"\n");
        assert_eq!(e.line, 2, "{e}");
        let e = error("domains:\n  - domain: a.example\n    email: x@b.example\n");
        assert_eq!(e.line, 3, "{e}");
        let e = error("domains:\n  - domain: a.example\n    labels: {domain: x}\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("set by the exporter"), "{e}");
        let e = error("resolver:\n  nameservers: [\"dns.example\"]\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("IP:PORT"), "{e}");
        let e = error("concurrency: 0\n");
        assert_eq!(e.line, 1, "{e}");
        let e = error("defaults:\n  steps: [root_domain, sometimes]\n");
        assert_eq!(e.line, 2, "{e}");
        let e = error("defaults:\n  interval: soon\n");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn credentials_files_are_checked_at_load_and_never_quoted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("autodiscover-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yml");
        std::fs::write(&good, "username: probe\npassword: hunter2\n").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
        let open = dir.join("open.yml");
        std::fs::write(&open, "username: probe\npassword: hunter2\n").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o640)).unwrap();

        let config = Config::parse_in(
            "defaults:\n  credentials_file: good.yml\ndomains:\n  - domain: a.example\n  - domain: b.example\n    credentials_hosts: [Mail.Provider.example]\n",
            Some(&dir),
        )
        .unwrap();
        let policy = config.domains[1].probe.credentials.as_ref().unwrap();
        assert_eq!(policy.file, good);
        assert_eq!(policy.hosts, ["mail.provider.example"]);
        assert!(config.domains[0].probe.credentials.is_some());
        assert!(!format!("{config:?}").contains("hunter2"));

        let e = Config::parse_in(
            "domains:\n  - domain: a.example\n    credentials_file: open.yml\n",
            Some(&dir),
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("chmod 600"), "{e}");
        assert!(!e.message.contains("hunter2"), "{e}");
        let e = Config::parse_in(
            "defaults:\n  credentials_file: /nonexistent/x.yml\n",
            Some(&dir),
        )
        .unwrap_err();
        assert!(
            e.message.contains("cannot read the credentials file"),
            "{e}"
        );
        assert!(
            Config::parse("")
                .unwrap()
                .ad_hoc_options()
                .credentials
                .is_none()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations_are_bounded_and_errors_carry_the_location() {
        let huge = "18446744073709551615s";
        let cases = [
            (
                format!("defaults:\n  timeout: {huge}\n"),
                2,
                "defaults.timeout",
            ),
            (
                format!("defaults:\n  step_timeout: {huge}\n"),
                2,
                "defaults.step_timeout",
            ),
            (
                format!("defaults:\n  phase_timeout: {huge}\n"),
                2,
                "defaults.phase_timeout",
            ),
            (
                format!("resolver:\n  timeout: {huge}\n"),
                2,
                "resolver.timeout",
            ),
            (
                format!("defaults:\n  interval: {huge}\n"),
                2,
                "defaults.interval",
            ),
            (
                format!("domains:\n  - domain: a.example\n    interval: {huge}\n"),
                3,
                "interval",
            ),
            (
                "defaults:\n  interval: 1ns\n".into(),
                2,
                "defaults.interval",
            ),
            (
                "domains:\n  - domain: a.example\n    interval: 1ns\n".into(),
                3,
                "interval",
            ),
            ("defaults:\n  interval: 8d\n".into(), 2, "defaults.interval"),
            ("defaults:\n  timeout: 50ms\n".into(), 2, "defaults.timeout"),
            ("defaults:\n  timeout: 11m\n".into(), 2, "defaults.timeout"),
            ("resolver:\n  timeout: 0s\n".into(), 2, "resolver.timeout"),
            (
                "defaults:\n  timeout: 10s\n  step_timeout: 20s\n".into(),
                3,
                "longer than defaults.timeout",
            ),
            (
                "defaults:\n  step_timeout: 4s\n  phase_timeout: 5s\n".into(),
                3,
                "longer than defaults.step_timeout",
            ),
            (
                "microsoft365:\n  cache_ttl: 30d\n".into(),
                2,
                "microsoft365.cache_ttl",
            ),
        ];
        for (text, line, needle) in cases {
            let e = error(&text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.column > 0, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
        let e = error("defaults:\n  interval: 99999999999999999999s\n");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn unset_step_and_phase_timeouts_fit_a_short_probe_timeout() {
        let config = Config::parse("defaults:\n  timeout: 2s\n").unwrap();
        assert_eq!(config.defaults.step_timeout, Duration::from_secs(2));
        assert_eq!(config.defaults.phase_timeout, Duration::from_secs(2));
        let defaults = Config::parse("domains: []\n").unwrap();
        assert_eq!(defaults.defaults, Defaults::default());
        assert!(defaults.warnings.is_empty(), "{:?}", defaults.warnings);
    }

    #[test]
    fn odd_combinations_are_warnings_with_the_location() {
        let config = Config::parse(
            "defaults:\n  interval: 20s\nresolver:\n  timeout: 10s\n\
             domains:\n  - domain: a.example\n    interval: 15s\n",
        )
        .unwrap();
        let lines: Vec<(u64, &str)> = config
            .warnings
            .iter()
            .map(|w| (w.0.line, w.0.message.as_str()))
            .collect();
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 2 && m.contains("shorter than defaults.timeout")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 4 && m.contains("resolver.timeout")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 7 && m.contains("interval of a.example")),
            "{lines:?}"
        );
    }

    fn many_domains(count: usize) -> String {
        let mut yaml = String::with_capacity(count * 80);
        yaml.push_str("domains:\n");
        for i in 0..count {
            yaml.push_str(&format!(
                "  - domain: d{i}.example\n    labels: {{customer: C{i}}}\n"
            ));
        }
        yaml
    }

    #[test]
    fn a_hundred_thousand_domains_with_labels_load() {
        let config = Config::parse(&many_domains(100_000)).unwrap();
        assert_eq!(config.domains.len(), 100_000);
        assert_eq!(config.domains[99_999].labels["customer"], "C99999");
    }

    #[test]
    fn past_the_size_limit_the_error_is_readable() {
        // The real limit needs 285,000 such domains; a small one shows the same error.
        let e = Config::parse_within(&many_domains(200), None, 900, 1800).unwrap_err();
        assert!(e.message.contains("too large"), "{e}");
        assert!(
            e.message
                .contains("at most 900 YAML nodes, about 100 domains"),
            "{e}"
        );
        assert!(e.line > 100, "{e}");
        assert_eq!(MAX_YAML_NODES / NODES_PER_DOMAIN, 222_222);
    }

    #[test]
    fn broken_yaml_is_an_error_not_a_panic() {
        for text in ["domains: [", "defaults: {interval: }", "- a\n- b", ":\n:"] {
            let e = Config::parse(text).unwrap_err();
            assert!(!e.message.is_empty());
        }
        assert!(Config::parse("").unwrap().domains.is_empty());
    }

    #[test]
    fn error_text_names_file_line_and_column() {
        let e = ConfigError {
            path: Some("c.yml".into()),
            line: 3,
            column: 5,
            message: "unknown field".into(),
        };
        assert_eq!(e.to_string(), "c.yml:3:5: unknown field");
    }
}
