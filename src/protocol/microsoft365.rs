//! Microsoft 365's JSON Autodiscover ("Direct Connect", SPEC §3.1): what its answers mean.
//!
//! Outlook 2016+ asks `GET {base}/autodiscover/autodiscover.json/v1.0/{address}?Protocol=AutodiscoverV1`
//! before any classic step. A 200 with `{"Protocol": "AutodiscoverV1", "Url": "…"}` names the
//! POX URL Outlook POSTs to next; anything else (a 302, which Microsoft also sends for unknown
//! users, a 404, an error JSON) hands over to the classic steps.

use crate::model::facts::{BodyKind, HttpExchange, Microsoft365Answer, Microsoft365Json};
use crate::model::step::StepStatus;
use serde_json::Value;

/// Statuses with which the service says "too many requests, come back later".
pub const THROTTLE_STATUSES: [u16; 2] = [429, 503];

/// Reads a JSON body of the service. Keys are matched case-insensitively, as .NET serialisers
/// in front of the service are not consistent about case.
pub fn parse_answer(body: &str) -> Microsoft365Json {
    let value: Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(error) => {
            return Microsoft365Json::Other {
                detail: format!("not JSON: {error}"),
            };
        }
    };
    let Some(object) = value.as_object() else {
        return Microsoft365Json::Other {
            detail: "JSON that is not an object".into(),
        };
    };
    let field = |name: &str| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str())
            .map(|text| truncate(text.trim()))
    };
    if let Some(url) = field("Url") {
        let protocol = field("Protocol").unwrap_or_default();
        if protocol.eq_ignore_ascii_case("AutodiscoverV1") {
            return Microsoft365Json::Endpoint {
                url: super::redirect::redact_userinfo(&url),
            };
        }
        return Microsoft365Json::Other {
            detail: format!("answer for protocol {protocol:?}, not AutodiscoverV1"),
        };
    }
    if let Some(code) = field("ErrorCode") {
        return Microsoft365Json::Error {
            code,
            message: field("ErrorMessage").unwrap_or_default(),
        };
    }
    Microsoft365Json::Other {
        detail: "JSON without Url or ErrorCode".into(),
    }
}

/// What one response of the service means for the step.
pub fn answer_of(exchange: &HttpExchange) -> Microsoft365Answer {
    let status = match (exchange.status, &exchange.body) {
        (
            Some(200),
            BodyKind::Microsoft365 {
                answer: Microsoft365Json::Endpoint { url },
            },
        ) => {
            return Microsoft365Answer::Known { url: url.clone() };
        }
        (Some(200), _) => StepStatus::NotAutodiscover,
        (Some(_), _) => StepStatus::HttpStatus,
        (None, _) => StepStatus::Timeout,
    };
    Microsoft365Answer::Unknown { status }
}

/// The service asks us to slow down.
pub fn is_throttled(exchange: &HttpExchange) -> bool {
    exchange
        .status
        .is_some_and(|status| THROTTLE_STATUSES.contains(&status))
}

fn truncate(text: &str) -> String {
    text.chars().take(2048).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::facts::HttpMethod;

    fn exchange(status: u16, body: &str) -> HttpExchange {
        let mut exchange =
            HttpExchange::failed(HttpMethod::Get, crate::model::facts::HttpFailure::Timeout);
        exchange.failure = None;
        exchange.status = Some(status);
        exchange.body = BodyKind::Microsoft365 {
            answer: parse_answer(body),
        };
        exchange
    }

    #[test]
    fn table_of_service_answers() {
        let known = |url: &str| Microsoft365Answer::Known { url: url.into() };
        let unknown = |status| Microsoft365Answer::Unknown { status };
        let cases = [
            (
                200,
                r#"{"Protocol":"AutodiscoverV1","Url":"https://outlook.office365.com/autodiscover/autodiscover.xml"}"#,
                known("https://outlook.office365.com/autodiscover/autodiscover.xml"),
            ),
            (
                200,
                r#"{"protocol":"autodiscoverv1","url":" https://mail.example/autodiscover/autodiscover.xml "}"#,
                known("https://mail.example/autodiscover/autodiscover.xml"),
            ),
            (
                200,
                r#"{"ErrorCode":"InternalServerError","ErrorMessage":"Failed"}"#,
                unknown(StepStatus::NotAutodiscover),
            ),
            (
                200,
                r#"{"Protocol":"Rest","Url":"https://outlook.office.com/api"}"#,
                unknown(StepStatus::NotAutodiscover),
            ),
            (200, "[1,2]", unknown(StepStatus::NotAutodiscover)),
            (200, "{not json", unknown(StepStatus::NotAutodiscover)),
            (302, "", unknown(StepStatus::HttpStatus)),
            (
                404,
                r#"{"ErrorCode":"UserNotFound"}"#,
                unknown(StepStatus::HttpStatus),
            ),
            (429, "", unknown(StepStatus::HttpStatus)),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                answer_of(&exchange(status, body)),
                expected,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn throttling_is_429_or_503() {
        assert!(is_throttled(&exchange(429, "")));
        assert!(is_throttled(&exchange(503, "")));
        assert!(!is_throttled(&exchange(302, "")));
    }
}
