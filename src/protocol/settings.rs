//! Which servers a `settings` answer sends Outlook to next, and how it talks to each (SPEC §3.4).

use crate::model::address::is_internal_name;
use crate::model::facts::url_host;
use crate::model::settings::{
    MAX_SERVICES, ProtocolSettings, ServiceKind, ServiceTarget, Settings, TlsMode, protocol_label,
};
use std::net::IpAddr;

/// The path Outlook Anywhere (RPC over HTTP) uses on the `EXPR` server.
pub const RPC_PROXY_PATH: &str = "/rpc/rpcproxy.dll";

/// Every distinct service endpoint the settings name, external ones first, at most
/// [`MAX_SERVICES`]. Endpoints are distinct by service, host and port; the elements that name
/// the same endpoint are merged.
pub fn service_targets(settings: &Settings) -> Vec<ServiceTarget> {
    let mut targets: Vec<ServiceTarget> = Vec::new();
    let mut add = |candidate: ServiceTarget| match targets.iter_mut().find(|t| {
        t.service == candidate.service && t.host == candidate.host && t.port == candidate.port
    }) {
        Some(existing) => {
            existing.external |= candidate.external;
            for name in candidate.named_by {
                if !existing.named_by.contains(&name) && existing.named_by.len() < 8 {
                    existing.named_by.push(name);
                }
            }
        }
        None => targets.push(candidate),
    };
    for section in &settings.protocols {
        let kind = section.kind.to_ascii_uppercase();
        match kind.as_str() {
            "EXPR" | "EXCH" | "WEB" | "MAPIHTTP" => {
                let section_external = kind == "EXPR";
                for named in &section.urls {
                    let Some(service) = url_service(&kind, &named.element) else {
                        continue;
                    };
                    let external = section_external
                        || named.element.starts_with("External/")
                        || named.element.ends_with("/ExternalUrl");
                    if let Some(target) = https_target(
                        service,
                        &named.url,
                        format!("{} {}", section.kind, named.element),
                        external,
                    ) {
                        add(target);
                    }
                }
                if kind == "EXPR"
                    && let Some(server) = section.server.as_deref().filter(|s| !s.is_empty())
                {
                    let url = format!("https://{}{RPC_PROXY_PATH}", server.trim());
                    if let Some(target) = https_target(
                        ServiceKind::Rpc,
                        &url,
                        format!("{} Server", section.kind),
                        true,
                    ) {
                        add(target);
                    }
                }
            }
            "IMAP" | "POP3" | "SMTP" => {
                if let Some(target) = mail_target(section, &kind) {
                    add(target);
                }
            }
            _ => {}
        }
    }
    // External endpoints first: they are the ones every client outside the network meets.
    targets.sort_by_key(|t| !t.external);
    targets.truncate(MAX_SERVICES);
    targets
}

/// The service a URL element of an Exchange section stands for.
fn url_service(section: &str, element: &str) -> Option<ServiceKind> {
    let leaf = element
        .rsplit('/')
        .next()
        .unwrap_or(element)
        .to_ascii_lowercase();
    if section == "MAPIHTTP" {
        return matches!(leaf.as_str(), "externalurl" | "internalurl").then_some(ServiceKind::Mapi);
    }
    match leaf.as_str() {
        "ewsurl" | "asurl" | "emwsurl" => Some(ServiceKind::Ews),
        "oofurl" => Some(ServiceKind::Oof),
        "oaburl" => Some(ServiceKind::Oab),
        "ecpurl" => Some(ServiceKind::Ecp),
        _ => None,
    }
}

fn https_target(
    service: ServiceKind,
    url: &str,
    named_by: String,
    external: bool,
) -> Option<ServiceTarget> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let tls = match parsed.scheme() {
        "https" => TlsMode::Implicit,
        "http" => TlsMode::None,
        _ => return None,
    };
    let host = url_host(parsed.as_str())?.to_ascii_lowercase();
    Some(ServiceTarget {
        service,
        protocol: protocol_label(service, tls).to_owned(),
        host,
        port: parsed.port_or_known_default()?,
        url: Some(parsed.to_string()),
        tls,
        named_by: vec![named_by],
        external,
    })
}

fn mail_target(section: &ProtocolSettings, kind: &str) -> Option<ServiceTarget> {
    let service = match kind {
        "IMAP" => ServiceKind::Imap,
        "POP3" => ServiceKind::Pop3,
        _ => ServiceKind::Smtp,
    };
    let server = section.server.as_deref()?.trim().trim_end_matches('.');
    if server.is_empty() {
        return None;
    }
    let host = match server.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => idna::domain_to_ascii(server).ok()?.to_ascii_lowercase(),
    };
    let tls = mail_tls_mode(section);
    let port = section.port.unwrap_or(match (service, tls) {
        (ServiceKind::Imap, TlsMode::Implicit) => 993,
        (ServiceKind::Imap, _) => 143,
        (ServiceKind::Pop3, TlsMode::Implicit) => 995,
        (ServiceKind::Pop3, _) => 110,
        (_, TlsMode::Implicit) => 465,
        _ => 587,
    });
    // Implicit TLS on a STARTTLS port is a contradiction no client resolves well; such
    // settings mean "encrypted", and on these ports that is STARTTLS.
    let tls = if tls == TlsMode::Implicit && matches!(port, 143 | 110 | 25 | 587) {
        TlsMode::Starttls
    } else {
        tls
    };
    Some(ServiceTarget {
        service,
        protocol: protocol_label(service, tls).to_owned(),
        host,
        port,
        url: None,
        tls,
        named_by: vec![format!("{} Server", section.kind)],
        external: true,
    })
}

/// `Encryption` wins over `SSL`: `SSL` is implicit TLS, `TLS` is STARTTLS, `None` is plain text;
/// `Auto`, or `SSL on` alone, goes by the port.
pub fn mail_tls_mode(section: &ProtocolSettings) -> TlsMode {
    let by_port = |port: Option<u16>| match port {
        Some(143 | 110 | 25 | 587) => TlsMode::Starttls,
        _ => TlsMode::Implicit,
    };
    match section
        .encryption
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("ssl") => TlsMode::Implicit,
        Some("tls") => TlsMode::Starttls,
        Some("none") => TlsMode::None,
        Some("auto") => by_port(section.port),
        _ => match section.ssl {
            Some(false) => TlsMode::None,
            _ => by_port(section.port),
        },
    }
}

/// Why a host announced for use outside the company network cannot work there, if it cannot:
/// an internal name, or an address (literal or resolved) that is private.
pub fn internal_reason(host: &str, resolved: &[IpAddr]) -> Option<String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return is_private(ip).then(|| format!("{ip} is a private address"));
    }
    if is_internal_name(host) {
        return Some(format!("{host} is an internal name"));
    }
    if !resolved.is_empty() && resolved.iter().all(|ip| is_private(*ip)) {
        let list: Vec<String> = resolved.iter().map(ToString::to_string).collect();
        return Some(format!(
            "{host} resolves only to private addresses ({})",
            list.join(", ")
        ));
    }
    None
}

/// RFC 1918, shared (RFC 6598), link-local and unique-local addresses: unreachable from outside.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pox::PoxResponse;
    use crate::protocol::pox;

    fn settings(protocols: &str) -> Settings {
        match pox::parse_response(&pox::settings_document("x", protocols)).unwrap() {
            PoxResponse::Settings { settings } => settings,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exchange_sections_name_distinct_https_services() {
        let s = settings(
            "<Protocol><Type>EXCH</Type><Server>guid@x</Server>\
             <EwsUrl>https://exch01.corp.local/EWS/Exchange.asmx</EwsUrl></Protocol>\
             <Protocol><Type>EXPR</Type><Server>mail.x.example</Server>\
             <ASUrl>https://mail.x.example/EWS/Exchange.asmx</ASUrl>\
             <EwsUrl>https://mail.x.example/EWS/Exchange.asmx</EwsUrl>\
             <OOFUrl>https://mail.x.example/EWS/Exchange.asmx</OOFUrl>\
             <OABUrl>https://mail.x.example/OAB/1/</OABUrl>\
             <EcpUrl>https://mail.x.example/ecp/</EcpUrl></Protocol>\
             <Protocol Type=\"mapiHttp\" Version=\"1\"><MailStore>\
             <ExternalUrl>https://MAIL.x.example/mapi/emsmdb/?MailboxId=a</ExternalUrl></MailStore></Protocol>",
        );
        let targets = service_targets(&s);
        let summary: Vec<(ServiceKind, &str, u16, bool)> = targets
            .iter()
            .map(|t| (t.service, t.host.as_str(), t.port, t.external))
            .collect();
        assert_eq!(
            summary,
            [
                (ServiceKind::Ews, "mail.x.example", 443, true),
                (ServiceKind::Oof, "mail.x.example", 443, true),
                (ServiceKind::Oab, "mail.x.example", 443, true),
                (ServiceKind::Ecp, "mail.x.example", 443, true),
                (ServiceKind::Rpc, "mail.x.example", 443, true),
                (ServiceKind::Mapi, "mail.x.example", 443, true),
                (ServiceKind::Ews, "exch01.corp.local", 443, false),
            ]
        );
        assert_eq!(targets[0].named_by, ["EXPR ASUrl", "EXPR EwsUrl"]);
        assert_eq!(
            targets[4].url.as_deref(),
            Some("https://mail.x.example/rpc/rpcproxy.dll")
        );
        assert_eq!(targets[0].protocol, "https");
    }

    #[test]
    fn mail_sections_get_their_tls_mode_and_port() {
        let s = settings(
            "<Protocol><Type>IMAP</Type><Server>Mail.X.example.</Server><Port>143</Port><Encryption>TLS</Encryption></Protocol>\
             <Protocol><Type>IMAP</Type><Server>mail.x.example</Server><Port>993</Port><SSL>on</SSL></Protocol>\
             <Protocol><Type>POP3</Type><Server>mail.x.example</Server><SSL>on</SSL></Protocol>\
             <Protocol><Type>SMTP</Type><Server>mail.x.example</Server><Port>587</Port><SSL>on</SSL></Protocol>\
             <Protocol><Type>SMTP</Type><Server>mail.x.example</Server><Port>25</Port><SSL>off</SSL></Protocol>\
             <Protocol><Type>SMTP</Type><Server>mail.x.example</Server><Port>465</Port><Encryption>Auto</Encryption></Protocol>",
        );
        let targets = service_targets(&s);
        let got: Vec<(ServiceKind, u16, TlsMode, &str)> = targets
            .iter()
            .map(|t| (t.service, t.port, t.tls, t.protocol.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (ServiceKind::Imap, 143, TlsMode::Starttls, "imap_starttls"),
                (ServiceKind::Imap, 993, TlsMode::Implicit, "imaps"),
                (ServiceKind::Pop3, 995, TlsMode::Implicit, "pop3s"),
                (ServiceKind::Smtp, 587, TlsMode::Starttls, "smtp_starttls"),
                (ServiceKind::Smtp, 25, TlsMode::None, "smtp"),
                (ServiceKind::Smtp, 465, TlsMode::Implicit, "smtps"),
            ]
        );
        assert_eq!(service_targets(&s)[0].host, "mail.x.example");
    }

    #[test]
    fn hostile_settings_yield_at_most_max_services() {
        let many: String = (0..50)
            .map(|i| {
                format!(
                    "<Protocol><Type>IMAP</Type><Server>m{i}.x.example</Server><Port>993</Port></Protocol>"
                )
            })
            .collect();
        assert_eq!(service_targets(&settings(&many)).len(), MAX_SERVICES);
        // junk URLs and unknown sections are skipped, not fatal
        let junk = settings(
            "<Protocol><Type>EXPR</Type><EwsUrl>https://</EwsUrl></Protocol>\
             <Protocol><Type>CUSTOM</Type><EwsUrl>https://a.example/</EwsUrl></Protocol>",
        );
        assert!(service_targets(&junk).is_empty());
    }

    #[test]
    fn internal_names_and_private_addresses() {
        assert!(internal_reason("exch01.corp.local", &[]).is_some());
        assert!(internal_reason("exch01", &[]).is_some());
        assert!(internal_reason("10.1.2.3", &[]).is_some());
        assert!(internal_reason("mail.x.example", &["192.168.1.4".parse().unwrap()]).is_some());
        assert!(
            internal_reason(
                "mail.x.example",
                &[
                    "192.168.1.4".parse().unwrap(),
                    "203.0.113.9".parse().unwrap()
                ]
            )
            .is_none()
        );
        assert!(internal_reason("mail.x.example", &["203.0.113.9".parse().unwrap()]).is_none());
        assert!(is_private("fd00::1".parse().unwrap()));
        assert!(is_private("100.64.0.1".parse().unwrap()));
        assert!(!is_private("127.0.0.1".parse().unwrap()));
    }
}
