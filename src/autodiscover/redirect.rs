//! Which redirect targets a client follows, and how the step URLs are built.

use url::Url;

/// The path every Autodiscover URL is built with.
pub const AUTODISCOVER_PATH: &str = "/Autodiscover/Autodiscover.xml";

/// Most redirects a client follows in one discovery (URL and address redirects together).
pub const MAX_HOPS: usize = 10;

/// `https://host/Autodiscover/Autodiscover.xml`.
pub fn https_url(host: &str) -> String {
    format!("https://{host}{AUTODISCOVER_PATH}")
}

/// `http://host/Autodiscover/Autodiscover.xml`.
pub fn http_url(host: &str) -> String {
    format!("http://{host}{AUTODISCOVER_PATH}")
}

/// Why a client refuses a redirect target.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefusal {
    /// The Location is not a URL.
    #[error("redirect target {0:?} is not a valid URL")]
    Malformed(String),
    /// The target is not https: clients never send the request over plain HTTP.
    #[error("redirect target {0} is not https")]
    NotHttps(String),
    /// The path is not an Autodiscover XML path.
    #[error("redirect target {0} is not an /autodiscover/.../autodiscover.xml URL")]
    WrongPath(String),
    /// The target was already tried in this discovery.
    #[error("redirect loop: {0} was already tried")]
    Loop(String),
    /// The hop limit was reached.
    #[error("more than {MAX_HOPS} redirects")]
    TooManyHops,
}

/// Resolves `location` against `base` and checks that a client follows it: https, and a path
/// of the form `/autodiscover/(segment/)*autodiscover.xml`, case-insensitive.
pub fn validate_target(base: &str, location: &str) -> Result<String, RedirectRefusal> {
    let base = Url::parse(base).map_err(|_| RedirectRefusal::Malformed(base.to_owned()))?;
    let target = base
        .join(location.trim())
        .map_err(|_| RedirectRefusal::Malformed(location.to_owned()))?;
    if target.scheme() != "https" || target.host_str().is_none() {
        return Err(RedirectRefusal::NotHttps(target.to_string()));
    }
    if !is_autodiscover_path(target.path()) {
        return Err(RedirectRefusal::WrongPath(target.to_string()));
    }
    Ok(target.to_string())
}

/// The host of an absolute URL, lower-case, without port.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]);
    }
    Some(host.split(':').next().unwrap_or(host))
}

fn is_autodiscover_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let mut segments = lower.trim_start_matches('/').split('/');
    if segments.next() != Some("autodiscover") {
        return false;
    }
    let rest: Vec<&str> = segments.collect();
    match rest.split_last() {
        Some((last, middle)) => *last == "autodiscover.xml" && middle.iter().all(|s| !s.is_empty()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://autodiscover.companyb.com/Autodiscover/Autodiscover.xml";

    #[test]
    fn https_autodiscover_targets_are_followed() {
        assert_eq!(
            validate_target(
                BASE,
                "https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml"
            ),
            Ok("https://autodiscover-s.outlook.com/Autodiscover/Autodiscover.xml".into())
        );
        assert!(
            validate_target(
                BASE,
                "https://mail.example/autodiscover/x/y/AUTODISCOVER.XML"
            )
            .is_ok()
        );
        assert!(
            validate_target(
                BASE,
                "https://mail.example:8443/autodiscover/autodiscover.xml"
            )
            .is_ok()
        );
    }

    #[test]
    fn relative_locations_resolve_against_the_response_url() {
        let base = "https://mail.example/Autodiscover/Autodiscover.xml";
        assert_eq!(
            validate_target(base, "/autodiscover/new/autodiscover.xml"),
            Ok("https://mail.example/autodiscover/new/autodiscover.xml".into())
        );
        // relative to an http base stays http: refused
        assert!(matches!(
            validate_target(BASE, "/autodiscover/autodiscover.xml"),
            Err(RedirectRefusal::NotHttps(_))
        ));
    }

    #[test]
    fn plain_http_wrong_paths_and_garbage_are_refused() {
        assert!(matches!(
            validate_target(BASE, "http://mail.example/autodiscover/autodiscover.xml"),
            Err(RedirectRefusal::NotHttps(_))
        ));
        assert!(matches!(
            validate_target(BASE, "https://www.example/"),
            Err(RedirectRefusal::WrongPath(_))
        ));
        assert!(matches!(
            validate_target(BASE, "https://www.example/autodiscover//autodiscover.xml"),
            Err(RedirectRefusal::WrongPath(_))
        ));
        assert!(matches!(
            validate_target(BASE, "https://www.example/owa/autodiscover.xml"),
            Err(RedirectRefusal::WrongPath(_))
        ));
        assert!(matches!(
            validate_target(BASE, "ftp://x/autodiscover/autodiscover.xml"),
            Err(RedirectRefusal::NotHttps(_))
        ));
        assert!(validate_target(BASE, "https://[::1/").is_err());
    }

    #[test]
    fn hosts_are_taken_from_urls() {
        assert_eq!(host_of("https://a.example/x"), Some("a.example"));
        assert_eq!(host_of("https://a.example:8443/x"), Some("a.example"));
        assert_eq!(host_of("https://[2001:db8::1]:443/x"), Some("2001:db8::1"));
        assert_eq!(host_of("not a url"), None);
    }
}
