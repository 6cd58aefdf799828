//! The YAML configuration: schema, defaults, and validation with line and column in every error.

use crate::diagnose::Expectations;
use crate::model::address::{Domain, MailAddress, NameError, ProbeTarget};
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

/// Labels the exporter sets itself; a domain's `labels` cannot use them.
const RESERVED_LABELS: &[&str] = &[
    "domain",
    "step",
    "status",
    "outcome",
    "host",
    "url",
    "target",
    "port",
    "priority",
    "weight",
    "subject",
    "issuer",
    "serial",
    "fingerprint_sha256",
    "service",
    "protocol",
    "job",
    "instance",
];

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
    /// How Microsoft 365 is asked.
    pub microsoft365: Microsoft365Settings,
    /// The domains, in file order.
    pub domains: Vec<DomainConfig>,
}

/// `microsoft365:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMicrosoft365 {
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    cache_ttl: Option<Duration>,
    #[serde(default)]
    max_queries_per_second: Option<Spanned<f64>>,
}

/// `defaults:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How often each domain is probed.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Budget of a whole probe.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Budget of one step.
    #[serde(default = "default_step_timeout", with = "humantime_serde")]
    pub step_timeout: Duration,
    /// Budget of one network phase.
    #[serde(default = "default_phase_timeout", with = "humantime_serde")]
    pub phase_timeout: Duration,
    /// Local part of the probe address.
    #[serde(default = "default_local_part")]
    pub local_part: String,
    /// Steps Outlook may use.
    #[serde(default = "all_steps")]
    pub steps: Vec<StepId>,
    /// Probe credentials (YAML with `username` and `password`) for domains without their own.
    #[serde(default)]
    pub credentials_file: Option<Spanned<PathBuf>>,
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

/// `resolver:`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverSettings {
    /// Name servers as `ip:port`; empty for the system resolver.
    #[serde(default)]
    pub nameservers: Vec<NameServer>,
    /// Transport to the name servers.
    #[serde(default)]
    pub protocol: DnsProtocol,
    /// Timeout of one DNS query attempt.
    #[serde(default = "default_dns_timeout", with = "humantime_serde")]
    pub timeout: Duration,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    resolver: ResolverSettings,
    #[serde(default)]
    tls: TlsSettings,
    #[serde(default)]
    concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    allow_any_target: bool,
    #[serde(default)]
    microsoft365: Option<RawMicrosoft365>,
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
    #[serde(default, with = "humantime_serde")]
    interval: Option<Duration>,
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
            microsoft365: Microsoft365Settings::default(),
            domains: Vec::new(),
        }
    }
}

impl Config {
    /// Loads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: Some(path.to_owned()),
            line: 0,
            column: 0,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse_in(&text, path.parent()).map_err(|mut e| {
            e.path = Some(path.to_owned());
            e
        })
    }

    /// Parses and validates YAML text; relative credentials files are relative to the
    /// working directory.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_in(text, None)
    }

    /// Parses and validates YAML text; relative credentials files are relative to `base`.
    pub fn parse_in(text: &str, base: Option<&Path>) -> Result<Self, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig {
                defaults: Defaults::default(),
                resolver: ResolverSettings::default(),
                tls: TlsSettings::default(),
                concurrency: None,
                allow_any_target: false,
                microsoft365: None,
                domains: Vec::new(),
            }
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                let location = e.location();
                ConfigError {
                    path: None,
                    line: location.as_ref().map_or(0, Location::line),
                    column: location.as_ref().map_or(0, Location::column),
                    message: strip_location(&e.without_snippet().to_string()),
                }
            })?
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

fn validate(raw: RawConfig, base: Option<&Path>) -> Result<Config, ConfigError> {
    let mut defaults = raw.defaults;
    if let Some(file) = defaults.credentials_file.as_mut() {
        file.value = credentials_path(file, base)?;
    }
    let nowhere = Location::UNKNOWN;
    for (name, value) in [
        ("defaults.interval", defaults.interval),
        ("defaults.timeout", defaults.timeout),
        ("defaults.step_timeout", defaults.step_timeout),
        ("defaults.phase_timeout", defaults.phase_timeout),
        ("resolver.timeout", raw.resolver.timeout),
    ] {
        if value.is_zero() {
            return Err(at(&nowhere, format!("{name} must be greater than zero")));
        }
    }
    MailAddress::new(
        &defaults.local_part,
        Domain::parse("example.com").map_err(|e| at(&nowhere, e.to_string()))?,
    )
    .map_err(|e| at(&nowhere, e.to_string()))?;
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
        let interval = entry.interval.unwrap_or(defaults.interval);
        if interval.is_zero() {
            return Err(at(
                &location,
                format!("interval of {domain} must be greater than zero"),
            ));
        }
        let credentials_file = match &entry.credentials_file {
            Some(file) => Some(credentials_path(file, base)?),
            None => defaults.credentials_file.as_ref().map(|f| f.value.clone()),
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
        resolver: raw.resolver,
        tls: raw.tls,
        concurrency,
        allow_any_target: raw.allow_any_target,
        microsoft365,
        domains,
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
        if ttl > Duration::from_secs(7 * 86_400) {
            return Err(at(
                &Location::UNKNOWN,
                "microsoft365.cache_ttl must be at most 7d".into(),
            ));
        }
        settings.cache_ttl = ttl;
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
