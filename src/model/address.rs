//! Mail domains and addresses, parsed once. Config, CLI, `/probe` and the probe itself all go
//! through these types, so one rule set decides what a name is (SPEC §3.3).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest local part RFC 5321 allows.
const MAX_LOCAL_PART: usize = 64;

/// Why a text is not a domain or an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty, or only a dot.
    #[error("empty domain name")]
    EmptyDomain,
    /// UTS #46 / IDNA 2008 rejects the name (bad characters, label or name too long, hyphens).
    #[error(
        "{0:?} is not a valid domain name (letters, digits and hyphens in dotted labels of at most 63 characters; Unicode is converted as UTS #46 says)"
    )]
    InvalidDomain(String),
    /// Not of the form `local@domain`.
    #[error("{0:?} is not a mail address (expected local@domain)")]
    NotAnAddress(String),
    /// The part before `@` is empty, too long, or has characters a probe cannot send.
    #[error(
        "{0:?} is not a valid local part of an address (1 to 64 printable characters, no spaces, quotes, brackets or @)"
    )]
    InvalidLocalPart(String),
}

/// A mailbox domain: what the admin wrote (for display) and its A-label form (for DNS, SNI and
/// certificate name checks). Equality and hashing use the A-label form, so case, a trailing dot
/// and Unicode versus Punycode spelling do not matter.
#[derive(Clone, Debug)]
pub struct Domain {
    ascii: String,
    display: String,
}

impl Domain {
    /// Parses and normalises a domain: trims, drops one trailing dot, converts to A-labels
    /// (UTS #46 with STD3 rules, DNS lengths checked).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let trimmed = text.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(NameError::EmptyDomain);
        }
        let ascii = idna::domain_to_ascii_strict(trimmed)
            .map_err(|_| NameError::InvalidDomain(text.to_owned()))?;
        if ascii.is_empty() || ascii.len() > 253 || ascii.split('.').any(|l| l.is_empty()) {
            return Err(NameError::InvalidDomain(text.to_owned()));
        }
        let display = if trimmed.is_ascii() {
            ascii.clone()
        } else {
            trimmed.to_lowercase()
        };
        Ok(Self { ascii, display })
    }

    /// The A-label form: what DNS, SNI and certificate checks use.
    pub fn ascii(&self) -> &str {
        &self.ascii
    }

    /// The name as configured (Unicode kept, lower-case, no trailing dot): what people read.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The name is written in Unicode (its A-label form differs from what people read).
    pub fn is_international(&self) -> bool {
        self.ascii != self.display
    }
}

impl PartialEq for Domain {
    fn eq(&self, other: &Self) -> bool {
        self.ascii == other.ascii
    }
}

impl Eq for Domain {}

impl PartialOrd for Domain {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Domain {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.ascii.cmp(&other.ascii)
    }
}

impl std::hash::Hash for Domain {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.ascii.hash(state);
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.display)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A mail address `local@domain` that a probe can send in a POX request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MailAddress {
    local: String,
    domain: Domain,
}

impl MailAddress {
    /// Parses `local@domain`. The local part is kept as written (servers may treat it
    /// case-sensitively); the domain is normalised as [`Domain::parse`] does.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let text = text.trim();
        let (local, domain) = text
            .rsplit_once('@')
            .ok_or_else(|| NameError::NotAnAddress(text.to_owned()))?;
        Self::new(local, Domain::parse(domain)?)
    }

    /// `local@domain` from its parts.
    pub fn new(local: &str, domain: Domain) -> Result<Self, NameError> {
        validate_local_part(local)?;
        Ok(Self {
            local: local.to_owned(),
            domain,
        })
    }

    /// The part before `@`.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// `local@a-label-domain`: what goes on the wire (POX request, Microsoft 365 query).
    pub fn ascii(&self) -> String {
        format!("{}@{}", self.local, self.domain.ascii())
    }
}

impl fmt::Display for MailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain.display())
    }
}

impl Serialize for MailAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MailAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a user asks to probe: a whole domain (probed with its configured or default address)
/// or one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeTarget {
    /// `D`.
    Domain(Domain),
    /// `local@D`.
    Address(MailAddress),
}

impl ProbeTarget {
    /// Parses a domain or an address (it is an address when it contains `@`).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.contains('@') {
            MailAddress::parse(text).map(Self::Address)
        } else {
            Domain::parse(text).map(Self::Domain)
        }
    }

    /// The domain probed.
    pub fn domain(&self) -> &Domain {
        match self {
            Self::Domain(domain) => domain,
            Self::Address(address) => address.domain(),
        }
    }
}

fn validate_local_part(local: &str) -> Result<(), NameError> {
    let forbidden = |c: char| {
        c.is_whitespace()
            || super::text::is_unsafe(c)
            || matches!(
                c,
                '@' | '<' | '>' | '"' | '(' | ')' | ',' | ';' | ':' | '\\' | '[' | ']'
            )
    };
    if local.is_empty() || local.chars().count() > MAX_LOCAL_PART || local.chars().any(forbidden) {
        return Err(NameError::InvalidLocalPart(local.to_owned()));
    }
    Ok(())
}

/// A host name that only exists inside a company network (`.local`, `.lan`, `.internal`,
/// single-label names): public CAs stopped issuing certificates for them in 2015, and clients
/// outside the network cannot resolve them.
pub fn is_internal_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    const SUFFIXES: [&str; 7] = [
        ".local",
        ".lan",
        ".internal",
        ".localdomain",
        ".corp",
        ".home",
        ".intranet",
    ];
    !name.contains('.') || SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// `name` is `domain` or a name under it (ASCII case ignored, a trailing dot allowed): a host of
/// the domain's own, such as `autodiscover.contoso.com` for `contoso.com`.
pub fn name_within(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.trim_end_matches('.').as_bytes(), domain.as_bytes());
    match name.len().checked_sub(domain.len()) {
        Some(0) => name.eq_ignore_ascii_case(domain),
        // `extra` ≥ 1 here, so `extra - 1` is an index of `name`.
        Some(extra) => name[extra - 1] == b'.' && name[extra..].eq_ignore_ascii_case(domain),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_within_a_domain_are_told_from_others() {
        assert!(name_within("contoso.com", "contoso.com"));
        assert!(name_within("Autodiscover.Contoso.COM.", "contoso.com"));
        assert!(!name_within("outlook.office365.com", "contoso.com"));
        assert!(!name_within("notcontoso.com", "contoso.com"));
        assert!(!name_within("com", "contoso.com"));
        assert!(!name_within("mail.hoster.example", "first.example"));
    }

    #[test]
    fn domains_normalise_case_dot_and_unicode() {
        let cases = [
            ("Example.COM", "example.com", "example.com"),
            ("example.com.", "example.com", "example.com"),
            (" example.com ", "example.com", "example.com"),
            (
                "münchen.example",
                "xn--mnchen-3ya.example",
                "münchen.example",
            ),
            (
                "MÜNCHEN.example.",
                "xn--mnchen-3ya.example",
                "münchen.example",
            ),
            (
                "xn--mnchen-3ya.example",
                "xn--mnchen-3ya.example",
                "xn--mnchen-3ya.example",
            ),
            ("localhost", "localhost", "localhost"),
        ];
        for (text, ascii, display) in cases {
            let domain = Domain::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(domain.ascii(), ascii, "{text}");
            assert_eq!(domain.display(), display, "{text}");
        }
        assert_eq!(
            Domain::parse("münchen.example").unwrap(),
            Domain::parse("XN--MNCHEN-3YA.example.").unwrap()
        );
    }

    #[test]
    fn invalid_domains_are_refused() {
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}example", "abcdefghi.".repeat(26));
        for text in [
            "",
            ".",
            "a..b",
            "-a.example",
            "a-.example",
            "a b.example",
            "a_b.example",
            "a/b.example",
            "a:b",
            "exa<mple.com",
            long_label.as_str(),
            long_name.as_str(),
            "xn--zz.example",
        ] {
            assert!(Domain::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn addresses_need_one_valid_local_part_and_domain() {
        let address = MailAddress::parse("Someone@München.Example").unwrap();
        assert_eq!(address.local(), "Someone");
        assert_eq!(address.ascii(), "Someone@xn--mnchen-3ya.example");
        assert_eq!(address.to_string(), "Someone@münchen.example");
        let long_local = format!("{}@x.example", "a".repeat(65));
        for text in [
            "a<b@x.example",
            "foo@@x.example",
            "@x.example",
            "a b@x.example",
            "a\r\nb@x.example",
            "a\u{202e}b@x.example",
            "a\u{9b}b@x.example",
            "x.example",
            "a@",
            long_local.as_str(),
        ] {
            assert!(MailAddress::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn targets_are_domains_or_addresses() {
        assert!(matches!(
            ProbeTarget::parse("a@b.example"),
            Ok(ProbeTarget::Address(_))
        ));
        assert!(matches!(
            ProbeTarget::parse("b.example"),
            Ok(ProbeTarget::Domain(_))
        ));
        assert!(ProbeTarget::parse("a@b@c.example").is_err());
    }

    #[test]
    fn internal_names_are_recognised() {
        for name in ["exch01", "mail.corp.local", "ex.lan", "a.internal."] {
            assert!(is_internal_name(name), "{name}");
        }
        for name in ["mail.example.com", "autodiscover.example.org"] {
            assert!(!is_internal_name(name), "{name}");
        }
    }
}
