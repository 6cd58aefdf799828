//! The "plain old XML" Autodiscover exchange (MS-OXDSCLI): the request Outlook POSTs and the
//! answers a server can give.

use crate::model::pox::PoxResponse;
use crate::model::settings::{NamedUrl, OtherElement, ProtocolSettings, Settings};
use quick_xml::events::Event;
use serde::Deserialize;

/// Namespace of the Outlook request schema.
pub const REQUEST_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
/// The response schema Outlook asks for.
pub const ACCEPTABLE_RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
/// Namespace of the outer response element.
pub const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";

/// The body Outlook POSTs for `address`.
pub fn request_body(address: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
         <Autodiscover xmlns=\"{REQUEST_SCHEMA}\">\r\n\
         <Request>\r\n\
         <EMailAddress>{}</EMailAddress>\r\n\
         <AcceptableResponseSchema>{ACCEPTABLE_RESPONSE_SCHEMA}</AcceptableResponseSchema>\r\n\
         </Request>\r\n\
         </Autodiscover>\r\n",
        escape(address)
    )
}

/// The address a POX request asks for, if `body` is one (used by the simulated servers).
pub fn requested_address(body: &str) -> Option<String> {
    let request: RequestDocument = quick_xml::de::from_str(body).ok()?;
    Some(request.request.email_address.trim().to_owned())
}

/// Why a body is not an Autodiscover response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoxParseError {
    /// The body is not well-formed XML of the expected shape.
    #[error("not an Autodiscover response: {0}")]
    Malformed(String),
    /// The body is an Autodiscover document without an action or an error.
    #[error("Autodiscover response without an action")]
    NoAction,
}

/// Parses a response body. Bodies are capped before they get here.
pub fn parse_response(body: &str) -> Result<PoxResponse, PoxParseError> {
    let doc: ResponseDocument =
        quick_xml::de::from_str(body).map_err(|e| PoxParseError::Malformed(e.to_string()))?;
    let response = doc.response.ok_or(PoxParseError::NoAction)?;
    if let Some(error) = response.error {
        return Ok(PoxResponse::Error {
            code: error.error_code.unwrap_or_default().trim().to_owned(),
            message: error.message.unwrap_or_default().trim().to_owned(),
        });
    }
    let account = response.account.ok_or(PoxParseError::NoAction)?;
    let action = account.action.unwrap_or_default();
    match action.trim().to_ascii_lowercase().as_str() {
        "settings" => Ok(PoxResponse::Settings {
            settings: parse_settings(body).unwrap_or_else(|_| Settings {
                display_name: response
                    .user
                    .and_then(|u| u.display_name)
                    .map(|n| n.trim().to_owned()),
                ..Settings::default()
            }),
        }),
        "redirectaddr" => account
            .redirect_addr
            .map(|a| PoxResponse::RedirectAddr {
                address: a.trim().to_owned(),
            })
            .ok_or(PoxParseError::NoAction),
        "redirecturl" => account
            .redirect_url
            .map(|u| PoxResponse::RedirectUrl {
                url: super::redirect::redact_userinfo(u.trim()),
            })
            .ok_or(PoxParseError::NoAction),
        _ => Err(PoxParseError::NoAction),
    }
}

/// Builds a settings response naming one Exchange server for EWS (simulated servers and tests).
pub fn settings_response(display_name: &str, server: &str) -> String {
    settings_document(
        display_name,
        &format!(
            "<Protocol><Type>EXPR</Type><Server>{}</Server>\
             <EwsUrl>https://{}/EWS/Exchange.asmx</EwsUrl></Protocol>",
            escape(server),
            escape(server)
        ),
    )
}

/// Wraps `<Protocol>` sections (already XML) in a settings response.
pub fn settings_document(display_name: &str, protocols_xml: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Autodiscover xmlns=\"{RESPONSE_SCHEMA}\">\
         <Response xmlns=\"{ACCEPTABLE_RESPONSE_SCHEMA}\">\
         <User><DisplayName>{}</DisplayName></User>\
         <Account><AccountType>email</AccountType><Action>settings</Action>\
         {protocols_xml}\
         </Account></Response></Autodiscover>",
        escape(display_name)
    )
}

/// Builds a `redirectAddr` or `redirectUrl` response (simulated servers and tests).
pub fn redirect_response(action: &str, element: &str, value: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Autodiscover xmlns=\"{RESPONSE_SCHEMA}\">\
         <Response xmlns=\"{ACCEPTABLE_RESPONSE_SCHEMA}\">\
         <Account><AccountType>email</AccountType><Action>{action}</Action>\
         <{element}>{}</{element}></Account></Response></Autodiscover>",
        escape(value)
    )
}

/// Builds an error response (simulated servers and tests).
pub fn error_response(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Autodiscover xmlns=\"{RESPONSE_SCHEMA}\"><Response>\
         <Error Time=\"00:00:00\" Id=\"1\"><ErrorCode>{}</ErrorCode><Message>{}</Message>\
         <DebugData /></Error></Response></Autodiscover>",
        escape(code),
        escape(message)
    )
}

/// Most `<Protocol>` sections read from one answer.
const MAX_PROTOCOLS: usize = 32;
/// Most uninterpreted elements kept per section.
const MAX_OTHER: usize = 32;
/// Most URLs kept per section.
const MAX_URLS: usize = 32;
/// Longest text kept for an uninterpreted element.
const MAX_OTHER_TEXT: usize = 256;
/// Longest URL or value kept.
const MAX_VALUE: usize = 2048;
/// Deepest nesting the tree reader follows, and most elements it builds.
const MAX_DEPTH: usize = 24;
const MAX_NODES: usize = 4096;

/// Reads the whole `settings` answer: every protocol section with its server, port, TLS
/// settings and URLs; elements the probe does not interpret are kept, never fatal.
pub fn parse_settings(body: &str) -> Result<Settings, PoxParseError> {
    let root = parse_tree(body).map_err(PoxParseError::Malformed)?;
    let response = root
        .child("Response")
        .ok_or_else(|| PoxParseError::Malformed("no Response element".into()))?;
    let user = response.child("User");
    let text_of = |node: Option<&Node>, name: &str| {
        node.and_then(|n| n.child(name))
            .map(|n| clip(n.text.trim(), MAX_VALUE))
            .filter(|t| !t.is_empty())
    };
    let mut settings = Settings {
        display_name: text_of(user, "DisplayName"),
        autodiscover_smtp_address: text_of(user, "AutoDiscoverSMTPAddress"),
        protocols: Vec::new(),
    };
    if let Some(account) = response.child("Account") {
        for section in account.children_named("Protocol").take(MAX_PROTOCOLS) {
            settings.protocols.push(protocol_settings(section));
        }
    }
    Ok(settings)
}

fn protocol_settings(section: &Node) -> ProtocolSettings {
    let kind = section
        .child("Type")
        .map(|t| t.text.trim().to_owned())
        .or_else(|| section.attribute("Type").map(str::to_owned))
        .unwrap_or_default();
    let mut out = ProtocolSettings {
        kind: clip(&kind, 64),
        version: section.attribute("Version").map(|v| clip(v, 64)),
        ..ProtocolSettings::default()
    };
    for child in &section.children {
        let value = child.text.trim();
        match child.name.to_ascii_lowercase().as_str() {
            "type" => {}
            "server" => out.server = Some(clip(value, MAX_VALUE)),
            "port" => match value.parse::<u16>() {
                Ok(port) => out.port = Some(port),
                Err(_) => push_other(&mut out, &child.name, value),
            },
            "ssl" => out.ssl = on_off(value),
            "spa" => out.spa = on_off(value),
            "encryption" => out.encryption = Some(clip(value, 64)),
            "authpackage" => out.auth_package = Some(clip(value, 64)),
            _ => collect(&mut out, child, ""),
        }
    }
    out
}

/// Files an element (and its descendants) under URLs or uninterpreted elements.
fn collect(out: &mut ProtocolSettings, node: &Node, prefix: &str) {
    let path = if prefix.is_empty() {
        node.name.clone()
    } else {
        format!("{prefix}/{}", node.name)
    };
    if node.children.is_empty() {
        let value = node.text.trim();
        let is_url = node.name.to_ascii_lowercase().ends_with("url")
            && (value.to_ascii_lowercase().starts_with("https://")
                || value.to_ascii_lowercase().starts_with("http://"));
        if is_url {
            if out.urls.len() < MAX_URLS {
                out.urls.push(NamedUrl {
                    element: clip(&path, 128),
                    url: clip(value, MAX_VALUE),
                });
            }
        } else {
            push_other(out, &path, value);
        }
        return;
    }
    for child in &node.children {
        // A nested section (WEB's External/Internal) names its protocol type in the path.
        if child.name.eq_ignore_ascii_case("Type") {
            continue;
        }
        let nested = if node.name.eq_ignore_ascii_case("Protocol") {
            match node.child("Type") {
                Some(kind) => format!("{path}[{}]", clip(kind.text.trim(), 32)),
                None => path.clone(),
            }
        } else {
            path.clone()
        };
        collect(out, child, &nested);
    }
}

fn push_other(out: &mut ProtocolSettings, element: &str, text: &str) {
    if out.other.len() < MAX_OTHER {
        out.other.push(OtherElement {
            element: clip(element, 128),
            text: clip(text, MAX_OTHER_TEXT),
        });
    }
}

fn on_off(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Some(true),
        "off" | "false" | "0" => Some(false),
        _ => None,
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// An element of a bounded XML tree: local names, attributes, text.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Self>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Self> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Self> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a document into a tree of local names, bounded in depth, size and text length.
fn parse_tree(body: &str) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut nodes = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(start) | Event::Empty(start) if stack.len() > MAX_DEPTH => {
                return Err(format!(
                    "elements nested deeper than {MAX_DEPTH} ({})",
                    start.local_name().as_ref().to_owned()
                ));
            }
            Event::Start(start) => {
                nodes += 1;
                stack.push(element(&start));
            }
            Event::Empty(start) => {
                nodes += 1;
                let node = element(&start);
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced end tag")?;
                let parent = stack.last_mut().ok_or("unbalanced end tag")?;
                parent.children.push(node);
            }
            Event::Text(text) => append(&mut stack, &text.xml10_content()),
            Event::CData(data) => append(&mut stack, &data.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match &*reference {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(format!("unknown entity &{other};")),
                    },
                };
                append(&mut stack, &resolved);
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        if nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} elements"));
        }
    }
    if stack.len() != 1 {
        return Err("unclosed elements".into());
    }
    let mut document = stack.pop().unwrap_or_default();
    document
        .children
        .pop()
        .filter(|_| document.children.is_empty())
        .ok_or_else(|| "not exactly one root element".to_owned())
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Node {
    let attributes = start
        .attributes()
        .flatten()
        .take(16)
        .map(|a| {
            let key = a.key.local_name().as_ref().to_owned();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| clip(&v, MAX_VALUE))
                .unwrap_or_default();
            (key, value)
        })
        .collect();
    Node {
        name: start.local_name().as_ref().to_owned(),
        attributes,
        text: String::new(),
        children: Vec::new(),
    }
}

fn append(stack: &mut [Node], text: &str) {
    if let Some(node) = stack.last_mut()
        && node.text.len() < MAX_VALUE
    {
        node.text.push_str(&clip(text, MAX_VALUE - node.text.len()));
    }
}

/// Escapes text for XML (and HTML) content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Deserialize)]
struct RequestDocument {
    #[serde(rename = "Request")]
    request: RequestElement,
}

#[derive(Deserialize)]
struct RequestElement {
    #[serde(rename = "EMailAddress")]
    email_address: String,
}

#[derive(Deserialize)]
struct ResponseDocument {
    #[serde(rename = "Response")]
    response: Option<ResponseElement>,
}

#[derive(Deserialize)]
struct ResponseElement {
    #[serde(rename = "User")]
    user: Option<UserElement>,
    #[serde(rename = "Account")]
    account: Option<AccountElement>,
    #[serde(rename = "Error")]
    error: Option<ErrorElement>,
}

#[derive(Deserialize)]
struct UserElement {
    #[serde(rename = "DisplayName")]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct AccountElement {
    #[serde(rename = "Action")]
    action: Option<String>,
    #[serde(rename = "RedirectAddr")]
    redirect_addr: Option<String>,
    #[serde(rename = "RedirectUrl")]
    redirect_url: Option<String>,
}

#[derive(Deserialize)]
struct ErrorElement {
    #[serde(rename = "ErrorCode")]
    error_code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_carries_the_address_and_the_schemas() {
        let body = request_body("someone@companyb.com");
        assert!(body.contains(REQUEST_SCHEMA));
        assert!(body.contains(ACCEPTABLE_RESPONSE_SCHEMA));
        assert_eq!(
            requested_address(&body).as_deref(),
            Some("someone@companyb.com")
        );
    }

    #[test]
    fn request_escapes_markup_in_the_address() {
        let body = request_body("a<b>&c@example.test");
        assert!(body.contains("a&lt;b&gt;&amp;c@example.test"));
        assert_eq!(
            requested_address(&body).as_deref(),
            Some("a<b>&c@example.test")
        );
    }

    #[test]
    fn settings_round_trip() {
        let parsed = parse_response(&settings_response("Some One", "mail.companya.com")).unwrap();
        let PoxResponse::Settings { settings } = parsed else {
            panic!("not settings: {parsed:?}")
        };
        assert_eq!(settings.display_name.as_deref(), Some("Some One"));
        assert_eq!(settings.protocols.len(), 1);
        let expr = &settings.protocols[0];
        assert_eq!(expr.kind, "EXPR");
        assert_eq!(expr.server.as_deref(), Some("mail.companya.com"));
        assert_eq!(
            expr.urls,
            vec![NamedUrl {
                element: "EwsUrl".into(),
                url: "https://mail.companya.com/EWS/Exchange.asmx".into()
            }]
        );
    }

    #[test]
    fn a_full_exchange_and_mail_answer_is_read() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User>
      <DisplayName>Probe &amp; Co</DisplayName>
      <AutoDiscoverSMTPAddress>probe@contoso.example</AutoDiscoverSMTPAddress>
      <DeploymentId>644560b8-a1ce-429c-8ace-23395843f701</DeploymentId>
    </User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <MicrosoftOnline>False</MicrosoftOnline>
      <Protocol>
        <Type>EXCH</Type>
        <Server>5a8d3e0c@contoso.example</Server>
        <ServerVersion>73C1834A</ServerVersion>
        <ASUrl>https://exch01.corp.local/EWS/Exchange.asmx</ASUrl>
        <EwsUrl>https://exch01.corp.local/EWS/Exchange.asmx</EwsUrl>
        <OOFUrl>https://exch01.corp.local/EWS/Exchange.asmx</OOFUrl>
        <OABUrl>https://exch01.corp.local/OAB/4d1d/</OABUrl>
        <EcpUrl>https://exch01.corp.local/owa/</EcpUrl>
        <EcpUrl-um>?rfr=olk&amp;p=customize/voicemail.aspx</EcpUrl-um>
      </Protocol>
      <Protocol>
        <Type>EXPR</Type>
        <Server>mail.contoso.example</Server>
        <SSL>On</SSL>
        <AuthPackage>Ntlm</AuthPackage>
        <ASUrl>https://mail.contoso.example/EWS/Exchange.asmx</ASUrl>
        <EwsUrl>https://mail.contoso.example/EWS/Exchange.asmx</EwsUrl>
        <EmwsUrl>https://mail.contoso.example/EWS/Exchange.asmx</EmwsUrl>
        <OABUrl>https://mail.contoso.example/OAB/4d1d/</OABUrl>
        <CertPrincipalName>msstd:mail.contoso.example</CertPrincipalName>
      </Protocol>
      <Protocol>
        <Type>WEB</Type>
        <External>
          <OWAUrl AuthenticationMethod="Fba">https://mail.contoso.example/owa/</OWAUrl>
          <Protocol><Type>EXPR</Type><ASUrl>https://mail.contoso.example/EWS/Exchange.asmx</ASUrl></Protocol>
        </External>
      </Protocol>
      <Protocol Type="mapiHttp" Version="1">
        <MailStore>
          <InternalUrl>https://exch01.corp.local/mapi/emsmdb/?MailboxId=x@contoso.example</InternalUrl>
          <ExternalUrl>https://mail.contoso.example/mapi/emsmdb/?MailboxId=x@contoso.example</ExternalUrl>
        </MailStore>
        <AddressBook>
          <ExternalUrl>https://mail.contoso.example/mapi/nspi/?MailboxId=x@contoso.example</ExternalUrl>
        </AddressBook>
      </Protocol>
      <Protocol>
        <Type>IMAP</Type><Server>imap.contoso.example</Server><Port>143</Port>
        <SPA>off</SPA><Encryption>TLS</Encryption><LoginName>probe</LoginName>
      </Protocol>
      <Protocol>
        <Type>SMTP</Type><Server>smtp.contoso.example</Server><Port>465</Port><SSL>on</SSL>
        <UsePOPAuth>on</UsePOPAuth><Something><Deep>kept</Deep></Something>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>"#;
        let PoxResponse::Settings { settings } = parse_response(body).unwrap() else {
            panic!("not settings")
        };
        assert_eq!(settings.display_name.as_deref(), Some("Probe & Co"));
        assert_eq!(
            settings.autodiscover_smtp_address.as_deref(),
            Some("probe@contoso.example")
        );
        let kinds: Vec<&str> = settings.protocols.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds, ["EXCH", "EXPR", "WEB", "mapiHttp", "IMAP", "SMTP"]);
        let exch = &settings.protocols[0];
        assert_eq!(exch.urls.len(), 5);
        assert!(exch.other.iter().any(|o| o.element == "ServerVersion"));
        assert!(exch.other.iter().any(|o| o.element == "EcpUrl-um"));
        let expr = &settings.protocols[1];
        assert_eq!(expr.ssl, Some(true));
        assert_eq!(expr.auth_package.as_deref(), Some("Ntlm"));
        let web = &settings.protocols[2];
        assert_eq!(web.urls[0].element, "External/OWAUrl");
        assert_eq!(web.urls[1].element, "External/Protocol[EXPR]/ASUrl");
        let mapi = &settings.protocols[3];
        assert_eq!(mapi.version.as_deref(), Some("1"));
        assert_eq!(mapi.urls[1].element, "MailStore/ExternalUrl");
        let imap = &settings.protocols[4];
        assert_eq!(
            (imap.port, imap.encryption.as_deref(), imap.spa),
            (Some(143), Some("TLS"), Some(false))
        );
        let smtp = &settings.protocols[5];
        assert_eq!((smtp.port, smtp.ssl), (Some(465), Some(true)));
        assert!(
            smtp.other
                .iter()
                .any(|o| o.element == "Something/Deep" && o.text == "kept")
        );
    }

    #[test]
    fn hostile_settings_are_bounded() {
        let deep = format!(
            "<Autodiscover><Response><Account><Action>settings</Action><Protocol><Type>EXPR</Type>{}{}</Protocol></Account></Response></Autodiscover>",
            "<a>".repeat(100),
            "</a>".repeat(100)
        );
        // the tree reader refuses it; the action is still recognised
        assert!(parse_settings(&deep).is_err());
        assert!(matches!(
            parse_response(&deep),
            Ok(PoxResponse::Settings { .. })
        ));
        let many = format!(
            "<Autodiscover><Response><Account><Action>settings</Action>{}</Account></Response></Autodiscover>",
            "<Protocol><Type>IMAP</Type><Server>x</Server></Protocol>".repeat(100)
        );
        assert_eq!(
            parse_settings(&many).unwrap().protocols.len(),
            MAX_PROTOCOLS
        );
    }

    #[test]
    fn redirects_round_trip() {
        let addr = redirect_response("redirectAddr", "RedirectAddr", "user@tenant.example");
        assert_eq!(
            parse_response(&addr).unwrap(),
            PoxResponse::RedirectAddr {
                address: "user@tenant.example".into()
            }
        );
        let url = redirect_response(
            "redirectUrl",
            "RedirectUrl",
            "https://mail.example/autodiscover/autodiscover.xml",
        );
        assert_eq!(
            parse_response(&url).unwrap(),
            PoxResponse::RedirectUrl {
                url: "https://mail.example/autodiscover/autodiscover.xml".into()
            }
        );
    }

    #[test]
    fn error_round_trip() {
        assert_eq!(
            parse_response(&error_response("600", "Invalid Request")).unwrap(),
            PoxResponse::Error {
                code: "600".into(),
                message: "Invalid Request".into()
            }
        );
    }

    #[test]
    fn prefixed_namespaces_are_accepted() {
        let body = "<a:Autodiscover xmlns:a=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\
            <a:Response><a:Account><a:Action>settings</a:Action></a:Account></a:Response></a:Autodiscover>";
        assert!(matches!(
            parse_response(body),
            Ok(PoxResponse::Settings { .. })
        ));
    }

    #[test]
    fn html_and_broken_xml_are_not_autodiscover() {
        assert!(parse_response("<html><body>Welcome</body></html>").is_err());
        assert!(parse_response("<Autodiscover><Response><Account>").is_err());
        assert!(parse_response("").is_err());
        assert_eq!(
            parse_response("<Autodiscover><Response/></Autodiscover>"),
            Err(PoxParseError::NoAction)
        );
        assert_eq!(
            parse_response(
                "<Autodiscover><Response><Account><Action>redirectAddr</Action></Account></Response></Autodiscover>"
            ),
            Err(PoxParseError::NoAction)
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(body in ".{0,512}") {
            let _ = parse_response(&body);
            let _ = parse_settings(&body);
        }

        #[test]
        fn any_address_survives_a_round_trip(local in "[a-zA-Z0-9.<>&'\"_-]{1,30}") {
            let address = format!("{local}@example.test");
            prop_assert_eq!(requested_address(&request_body(&address)), Some(address));
        }
    }
}
