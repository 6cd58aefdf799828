//! The host, port and path of the http(s) URLs a probe follows, as the WHATWG URL parser (the
//! `url` crate) reads them. Nearly every URL a probe meets is plain ASCII
//! (`https://autodiscover.example.com/Autodiscover/Autodiscover.xml`), and for those the parser
//! returns the text unchanged: they are read directly. Anything else (upper case, IDNA,
//! percent-escapes, dot segments, IPv4 and IPv6 forms, user info, odd ports) goes to the parser,
//! which stays the authority. A hop asked for its host, port and path about five times, and each
//! parse cost more than the hop's DNS message.

use std::borrow::Cow;

/// The host of an absolute URL: lower-case, A-labels, IPv6 without brackets, no port.
/// Borrowed from `url` when it is already in that form (as nearly every URL a probe meets is).
pub fn url_host(url: &str) -> Option<Cow<'_, str>> {
    if let Some(plain) = Plain::read(url) {
        return Some(Cow::Borrowed(plain.host));
    }
    Some(Cow::Owned(match url::Url::parse(url).ok()?.host()? {
        url::Host::Domain(name) => name.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    }))
}

/// The port of an absolute URL, the scheme's default when it names none.
pub fn url_port(url: &str) -> Option<u16> {
    if let Some(plain) = Plain::read(url) {
        return Some(plain.port);
    }
    url::Url::parse(url).ok()?.port_or_known_default()
}

/// The path of an absolute URL with its query (`/path?query`), as a request line carries it.
pub fn url_path_and_query(url: &str) -> Option<String> {
    if let Some(path) = Plain::read(url).and_then(|plain| plain.path_and_query()) {
        return Some(path.to_owned());
    }
    let parsed = url::Url::parse(url).ok()?;
    Some(match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    })
}

/// An http(s) URL whose scheme and authority the parser would return unchanged.
struct Plain<'a> {
    host: &'a str,
    port: u16,
    /// From the first `/` after the authority to the end (empty when there is none).
    tail: &'a str,
}

impl<'a> Plain<'a> {
    fn read(url: &'a str) -> Option<Self> {
        let (rest, default_port) = if let Some(rest) = url.strip_prefix("https://") {
            (rest, 443)
        } else {
            (url.strip_prefix("http://")?, 80)
        };
        let end = rest
            .bytes()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !(tail.is_empty() || tail.starts_with('/')) {
            return None;
        }
        let (host, port) = match authority.bytes().position(|b| b == b':') {
            None => (authority, default_port),
            Some(colon) => {
                let (host, digits) = (&authority[..colon], &authority[colon + 1..]);
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                (host, digits.parse().ok()?)
            }
        };
        plain_host(host).then_some(Self { host, port, tail })
    }

    /// The path and query when the parser would return them unchanged: no characters it
    /// percent-encodes or treats specially, no dot segments.
    fn path_and_query(&self) -> Option<&'a str> {
        let end = self.tail.bytes().position(|b| b == b'#');
        let without_fragment = end.map_or(self.tail, |end| &self.tail[..end]);
        if without_fragment.is_empty() {
            return Some("/");
        }
        let (path, query) = match without_fragment.bytes().position(|b| b == b'?') {
            Some(mark) => (
                &without_fragment[..mark],
                Some(&without_fragment[mark + 1..]),
            ),
            None => (without_fragment, None),
        };
        let plain_path = path.bytes().all(|b| is_plain_query_byte(b) || b == b'\'')
            && !path
                .as_bytes()
                .split(|&b| b == b'/')
                .any(|segment| segment == b"." || segment == b"..");
        let plain_query = query.is_none_or(|query| query.bytes().all(is_plain_query_byte));
        (plain_path && plain_query).then_some(without_fragment)
    }
}

/// A host the parser keeps as it is: lower-case ASCII letters, digits, dots and hyphens in
/// non-empty labels, no A-label to validate (`xn--`), and a last label starting with a letter
/// (one of digits, or `0x...`, would make the host an IPv4 address).
fn plain_host(host: &str) -> bool {
    host.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !host.as_bytes().split(|&b| b == b'.').any(<[u8]>::is_empty)
        && !host.as_bytes().windows(4).any(|w| w == b"xn--")
        && host
            .as_bytes()
            .rsplit(|&b| b == b'.')
            .next()
            .and_then(|last| last.first())
            .is_some_and(u8::is_ascii_lowercase)
}

/// Bytes the parser leaves alone in a query (and, with `'`, in a path).
fn is_plain_query_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/?".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed_host(url: &str) -> Option<String> {
        match url::Url::parse(url).ok()?.host()? {
            url::Host::Domain(name) => Some(name.to_owned()),
            url::Host::Ipv4(ip) => Some(ip.to_string()),
            url::Host::Ipv6(ip) => Some(ip.to_string()),
        }
    }

    fn parsed_path(url: &str) -> Option<String> {
        let parsed = url::Url::parse(url).ok()?;
        Some(match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        })
    }

    fn agrees(url: &str) {
        let parsed = url::Url::parse(url).ok();
        assert_eq!(
            url_host(url).map(Cow::into_owned),
            parsed_host(url),
            "host of {url:?}"
        );
        assert_eq!(
            url_port(url),
            parsed.as_ref().and_then(url::Url::port_or_known_default),
            "port of {url:?}"
        );
        assert_eq!(url_path_and_query(url), parsed_path(url), "path of {url:?}");
    }

    #[test]
    fn plain_urls_are_read_without_the_parser_and_the_rest_by_it() {
        let plain = "https://autodiscover.example.com/Autodiscover/Autodiscover.xml";
        assert!(
            Plain::read(plain)
                .and_then(|p| p.path_and_query())
                .is_some()
        );
        agrees(plain);
        for url in [
            "https://autodiscover.example.com",
            "http://autodiscover.example.com:8080/autodiscover/autodiscover.xml?a=b&c=d#frag",
            "https://Autodiscover.Example.COM/x",
            "https://xn--bcher-kva.example/",
            "https://bücher.example/",
            "https://127.0.0.1/x",
            "https://127.1/x",
            "https://0x7f.0.0.1/",
            "https://a.b.1/",
            "https://a.b.0x1f/",
            "https://[::1]:8443/x",
            "https://user:pass@example.com/x",
            "https://example.com:65536/",
            "https://example.com:/",
            "https://example.com:0443/",
            "https://example.com:443/",
            "http://example.com:80/",
            "https://exa%6Dple.com/",
            "https://example.com/a/./b/../c",
            "https://example.com/a/./b",
            "https://example.com/a/..",
            "https://example.com/a/%2e%2E/c",
            "https://example.com/a b/<c>?q=\"x\" 'y'",
            "https://example.com/a\"b",
            "https://example.com/a'b?c'd",
            "https://example.com\\evil.example/x",
            "https://example.com?x",
            "https://example.com#x",
            "https://example..com/",
            "https://.example.com/",
            "https://example.com./",
            "https://-a-.example/",
            " https://example.com/ ",
            "https://exam\tple.com/",
            "https://example.com/x?y=1#\n",
            "ftp://example.com/",
            "https:example.com/",
            "https:///example.com/",
            "https://",
        ] {
            agrees(url);
        }
    }

    proptest! {
        #[test]
        fn every_url_reads_as_the_parser_reads_it(
            scheme in prop::sample::select(vec!["https://", "http://", "HTTPS://", "https:"]),
            host in "[a-zA-Z0-9.:@%\\-\\[\\]]{0,24}",
            rest in "[a-zA-Z0-9./?#%&=;:'\"<>{}`^|\\\\ \\t\\-]{0,24}",
        ) {
            agrees(&format!("{scheme}{host}{rest}"));
        }

        #[test]
        fn host_like_urls_read_as_the_parser_reads_them(
            labels in prop::collection::vec("[a-z0-9\\-]{0,8}|xn--[a-z0-9]{0,6}|0x[0-9a-f]{1,3}", 1..5),
            port in prop::option::of(0u32..70000),
            path in "(/[a-zA-Z0-9.\\-_~%\"'<>`{}^| \\\\]{0,6}){0,3}(\\?[a-z=&.'\"/ <>]{0,6})?(#[a-z ]{0,3})?",
        ) {
            let port = port.map_or_else(String::new, |p| format!(":{p}"));
            agrees(&format!("https://{}{port}{path}", labels.join(".")));
        }
    }
}
