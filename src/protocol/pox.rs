//! The "plain old XML" Autodiscover exchange (MS-OXDSCLI): the request Outlook POSTs and the
//! answers a server can give.

use crate::model::pox::{PoxProtocol, PoxResponse};
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
            display_name: response
                .user
                .and_then(|u| u.display_name)
                .map(|n| n.trim().to_owned()),
            protocols: account
                .protocol
                .into_iter()
                .map(|p| PoxProtocol {
                    kind: p.kind.unwrap_or_default().trim().to_owned(),
                    server: p.server.map(|s| s.trim().to_owned()),
                    ews_url: p.ews_url.map(|s| s.trim().to_owned()),
                })
                .collect(),
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

/// Builds a settings response (simulated servers and tests).
pub fn settings_response(display_name: &str, server: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Autodiscover xmlns=\"{RESPONSE_SCHEMA}\">\
         <Response xmlns=\"{ACCEPTABLE_RESPONSE_SCHEMA}\">\
         <User><DisplayName>{}</DisplayName></User>\
         <Account><AccountType>email</AccountType><Action>settings</Action>\
         <Protocol><Type>EXPR</Type><Server>{}</Server>\
         <EwsUrl>https://{}/EWS/Exchange.asmx</EwsUrl></Protocol>\
         </Account></Response></Autodiscover>",
        escape(display_name),
        escape(server),
        escape(server)
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
    #[serde(rename = "Protocol", default)]
    protocol: Vec<ProtocolElement>,
}

#[derive(Deserialize)]
struct ProtocolElement {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Server")]
    server: Option<String>,
    #[serde(rename = "EwsUrl")]
    ews_url: Option<String>,
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
        assert_eq!(
            parsed,
            PoxResponse::Settings {
                display_name: Some("Some One".into()),
                protocols: vec![PoxProtocol {
                    kind: "EXPR".into(),
                    server: Some("mail.companya.com".into()),
                    ews_url: Some("https://mail.companya.com/EWS/Exchange.asmx".into()),
                }],
            }
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
        }

        #[test]
        fn any_address_survives_a_round_trip(local in "[a-zA-Z0-9.<>&'\"_-]{1,30}") {
            let address = format!("{local}@example.test");
            prop_assert_eq!(requested_address(&request_body(&address)), Some(address));
        }
    }
}
