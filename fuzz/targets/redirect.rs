//! Redirect rules (`protocol::redirect::validate_target`): the first line is the URL the
//! response came from, the rest the Location a server sent.

mod input;

use autodiscover_exporter::protocol::redirect;

fn main() {
    let text = input::text();
    let (base, location) = text.split_once('\n').unwrap_or((
        "https://autodiscover.example.com/Autodiscover/Autodiscover.xml",
        &text,
    ));
    if let Ok(target) = redirect::validate_target(base, location) {
        let url = url::Url::parse(&target).expect("a followed target is a URL");
        assert_eq!(url.scheme(), "https");
        assert!(url.username().is_empty() && url.password().is_none());
        assert!(
            url.path()
                .to_ascii_lowercase()
                .ends_with("/autodiscover.xml")
        );
    }
    let redacted = redirect::redact_userinfo(location);
    if let Ok(url) = url::Url::parse(&redacted) {
        assert!(url.password().is_none());
    }
}
