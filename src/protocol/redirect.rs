//! Which redirect targets a client follows, and how the step URLs are built.

use crate::model::facts::RedirectRefusal;
use url::Url;

/// The path every Autodiscover URL is built with.
pub const AUTODISCOVER_PATH: &str = "/Autodiscover/Autodiscover.xml";

/// `https://host/Autodiscover/Autodiscover.xml`.
pub fn https_url(host: &str) -> String {
    format!("https://{host}{AUTODISCOVER_PATH}")
}

/// `http://host/Autodiscover/Autodiscover.xml`.
pub fn http_url(host: &str) -> String {
    format!("http://{host}{AUTODISCOVER_PATH}")
}

/// Resolves `location` against `base` and checks that a client follows it: https, and a path
/// of the form `/autodiscover/(segment/)*autodiscover.xml`, case-insensitive.
pub fn validate_target(base: &str, location: &str) -> Result<String, RedirectRefusal> {
    let base = Url::parse(base).map_err(|_| RedirectRefusal::Malformed(base.to_owned()))?;
    let target = base
        .join(location.trim())
        .map_err(|_| RedirectRefusal::Malformed(location.to_owned()))?;
    if target.scheme() != "https" || target.host_str().is_none() {
        return Err(RedirectRefusal::NotHttps(without_userinfo(&target)));
    }
    if !target.username().is_empty() || target.password().is_some() {
        return Err(RedirectRefusal::Userinfo(without_userinfo(&target)));
    }
    if !is_autodiscover_path(target.path()) {
        return Err(RedirectRefusal::WrongPath(target.to_string()));
    }
    Ok(target.to_string())
}

/// A URL as a server sent it (Location, redirectUrl, Microsoft 365's Url) with credentials in it
/// replaced: they are kept out of traces, JSON and logs. Anything else is returned unchanged.
pub fn redact_userinfo(text: &str) -> String {
    let parsed = Url::parse(text)
        .or_else(|_| Url::parse("https://relative.invalid/").and_then(|base| base.join(text)));
    match parsed {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => without_userinfo(&url),
        _ => text.to_owned(),
    }
}

/// The URL with its credentials replaced, so they never reach a trace or a log.
fn without_userinfo(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_username("redacted");
    let _ = shown.set_password(None);
    shown.to_string()
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
    fn credentials_in_recorded_urls_are_redacted() {
        assert_eq!(
            redact_userinfo("https://a:secret@x.example/autodiscover/autodiscover.xml"),
            "https://redacted@x.example/autodiscover/autodiscover.xml"
        );
        assert!(!redact_userinfo("//a:secret@x.example/p").contains("secret"));
        assert_eq!(
            redact_userinfo("/autodiscover/x.xml"),
            "/autodiscover/x.xml"
        );
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }

    #[test]
    fn credentials_in_targets_are_refused_and_not_shown() {
        for location in [
            "https://user:secret@mail.example/autodiscover/autodiscover.xml",
            "https://user@mail.example/autodiscover/autodiscover.xml",
            "https://:secret@mail.example/autodiscover/autodiscover.xml",
            "http://user:secret@mail.example/autodiscover/autodiscover.xml",
        ] {
            let refusal = validate_target(BASE, location).unwrap_err();
            assert!(
                matches!(
                    refusal,
                    RedirectRefusal::Userinfo(_) | RedirectRefusal::NotHttps(_)
                ),
                "{location}: {refusal:?}"
            );
            assert!(!refusal.to_string().contains("secret"), "{refusal}");
        }
    }
}
