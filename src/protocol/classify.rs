//! Turns what one address answered into a step status or a redirect, and the answers of all
//! addresses of a host into the hop's result.

use super::microsoft365;
use super::redirect::validate_target;
use crate::model::address::MailAddress;
use crate::model::facts::{
    BodyKind, ConnectResult, HopNext, HopOrigin, HttpExchange, HttpFailure, Microsoft365Answer,
    RedirectRefusal, TlsFacts, TlsHandshake,
};
use crate::model::pox::PoxResponse;
use crate::model::step::StepStatus;

/// What one address leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressResult {
    /// No connection (refused, unreachable, connect timeout): a client tries the next address.
    Unreachable(StepStatus),
    /// The address ends the hop with this status.
    Final(StepStatus),
    /// The address sends the client on (an https redirect or a new address).
    Follow(HopNext),
    /// The address redirects somewhere clients do not go.
    Refused(RedirectRefusal),
}

impl AddressResult {
    /// The status this result stands for while ranking addresses; `None` for a redirect that
    /// is followed (its status is where it leads).
    pub fn status(&self) -> Option<StepStatus> {
        match self {
            Self::Unreachable(status) | Self::Final(status) => Some(*status),
            Self::Follow(_) => None,
            Self::Refused(_) => Some(StepStatus::RedirectInvalid),
        }
    }
}

/// The request a hop sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// The Autodiscover POST over https.
    HttpsPost,
    /// The unauthenticated GET on port 80 of the HTTP redirect step.
    PlainGet,
    /// The anonymous GET of Microsoft 365's JSON Autodiscover over https.
    Microsoft365Get,
}

impl Request {
    /// The request goes over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::HttpsPost | Self::Microsoft365Get)
    }

    /// The port a URL without one uses.
    pub fn default_port(self) -> u16 {
        if self.is_tls() { 443 } else { 80 }
    }
}

/// Classifies one address: connection, TLS, certificate and HTTP facts, in that order.
pub fn classify_address(
    url: &str,
    request: Request,
    connect: &ConnectResult,
    tls: Option<&TlsFacts>,
    http: Option<&HttpExchange>,
) -> AddressResult {
    match connect {
        ConnectResult::Connected => {}
        ConnectResult::Timeout => return AddressResult::Unreachable(StepStatus::Timeout),
        // Not tried, for a reason on this machine: never the domain's `connect_refused`. The
        // probe's outcome is `probe_error` (`verdict::local_failure`); the address ranks as a
        // connection that did not finish, so addresses that were tried decide the hop.
        ConnectResult::LocalError { .. } => {
            return AddressResult::Unreachable(StepStatus::Timeout);
        }
        ConnectResult::Refused | ConnectResult::Failed { .. } => {
            return AddressResult::Unreachable(StepStatus::ConnectRefused);
        }
    }
    if request.is_tls() {
        let Some(tls) = tls else {
            return AddressResult::Final(StepStatus::TlsHandshakeFailed);
        };
        match tls.handshake {
            TlsHandshake::Established => {}
            TlsHandshake::TimedOut => return AddressResult::Final(StepStatus::Timeout),
            TlsHandshake::Failed { .. } => {
                return AddressResult::Final(StepStatus::TlsHandshakeFailed);
            }
        }
        if let Some(problem) = tls.verdict.as_ref().and_then(|v| v.problem()) {
            // Outlook stops at the security alert: whatever answered behind it is not an
            // endpoint. The Microsoft 365 query is a background request: a certificate it
            // cannot trust is a failed query, after which Outlook goes on with the classic
            // steps (SPEC §3.1 "a network failure").
            return AddressResult::Final(if request == Request::Microsoft365Get {
                StepStatus::TlsHandshakeFailed
            } else {
                problem
            });
        }
    }
    let Some(http) = http else {
        return AddressResult::Final(StepStatus::Timeout);
    };
    match &http.failure {
        Some(HttpFailure::Timeout) => return AddressResult::Final(StepStatus::Timeout),
        Some(HttpFailure::Protocol { .. }) if http.status.is_none() => {
            return AddressResult::Final(StepStatus::NotAutodiscover);
        }
        _ => {}
    }
    let Some(status) = http.status else {
        return AddressResult::Final(StepStatus::NotAutodiscover);
    };
    if request == Request::Microsoft365Get {
        // Microsoft answers 302 for unknown users (and, some report, for hybrid mailboxes):
        // a redirect here proves nothing and is not followed.
        return match microsoft365::answer_of(http) {
            Microsoft365Answer::Known { url: target } => {
                follow_url(url, &target, HopOrigin::Microsoft365)
            }
            Microsoft365Answer::Unknown { status } => AddressResult::Final(status),
        };
    }
    if matches!(status, 301 | 302 | 307 | 308) {
        return match &http.location {
            Some(location) => follow_url(url, location, HopOrigin::HttpRedirect { status }),
            None => AddressResult::Final(StepStatus::HttpStatus),
        };
    }
    if request == Request::PlainGet {
        // Clients never send the request over plain HTTP: only a redirect counts here.
        return AddressResult::Final(if status == 200 {
            StepStatus::NotAutodiscover
        } else {
            StepStatus::HttpStatus
        });
    }
    match status {
        401 if !http.auth_schemes().is_empty() => AddressResult::Final(StepStatus::EndpointFound),
        200 => classify_answer(url, &http.body),
        _ => AddressResult::Final(StepStatus::HttpStatus),
    }
}

fn classify_answer(url: &str, body: &BodyKind) -> AddressResult {
    match body {
        BodyKind::Autodiscover { response } => match response {
            PoxResponse::Settings { .. } | PoxResponse::Error { .. } => {
                AddressResult::Final(StepStatus::EndpointFound)
            }
            PoxResponse::RedirectUrl { url: target } => {
                follow_url(url, target, HopOrigin::PoxRedirectUrl)
            }
            PoxResponse::RedirectAddr { address } => match MailAddress::parse(address) {
                Ok(_) => AddressResult::Follow(HopNext::Address {
                    address: address.clone(),
                }),
                Err(_) => AddressResult::Refused(RedirectRefusal::Malformed(address.clone())),
            },
        },
        BodyKind::Empty
        | BodyKind::Html
        | BodyKind::Microsoft365 { .. }
        | BodyKind::Other { .. }
        | BodyKind::TooLarge => AddressResult::Final(StepStatus::NotAutodiscover),
    }
}

fn follow_url(base: &str, location: &str, origin: HopOrigin) -> AddressResult {
    match validate_target(base, location) {
        Ok(url) => AddressResult::Follow(HopNext::Url { url, origin }),
        Err(refusal) => AddressResult::Refused(refusal),
    }
}

/// The result of a hop across all the addresses of its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HopResult {
    /// The hop's status; `None` when the hop redirects and the status is where it leads.
    pub status: Option<StepStatus>,
    /// Where to go next.
    pub next: Option<HopNext>,
    /// The refusal that decided the hop, when a redirect was refused.
    pub refused: Option<RedirectRefusal>,
}

/// Aggregates per-address results. A client that cannot connect to one address tries the next
/// one, so connection failures count only when no address could be reached; among the
/// addresses that answered, the worst answer is the hop's (some clients land there).
pub fn aggregate(results: &[AddressResult]) -> HopResult {
    let connected: Vec<&AddressResult> = results
        .iter()
        .filter(|r| !matches!(r, AddressResult::Unreachable(_)))
        .collect();
    let candidates: Vec<&AddressResult> = if connected.is_empty() {
        results.iter().collect()
    } else {
        connected
    };
    let worst = candidates
        .iter()
        .min_by_key(|r| rank(r))
        .map(|r| (*r).clone());
    match worst {
        None => HopResult {
            status: Some(StepStatus::DnsNoRecord),
            next: None,
            refused: None,
        },
        Some(AddressResult::Follow(next)) => HopResult {
            status: None,
            next: Some(next),
            refused: None,
        },
        Some(AddressResult::Refused(refusal)) => HopResult {
            status: Some(StepStatus::RedirectInvalid),
            next: None,
            refused: Some(refusal),
        },
        Some(AddressResult::Final(status) | AddressResult::Unreachable(status)) => HopResult {
            status: Some(status),
            next: None,
            refused: None,
        },
    }
}

/// Ranking used to pick the worst answer: statuses in severity order, a followed redirect just
/// before `endpoint_found` (it is not an answer yet).
fn rank(result: &AddressResult) -> u8 {
    match result.status() {
        Some(status) if status == StepStatus::EndpointFound => 2 * status as u8 + 1,
        Some(status) => 2 * status as u8,
        None => 2 * StepStatus::EndpointFound as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::facts::{CertificateVerdict, Validity};
    use crate::model::settings::Settings;

    const URL: &str = "https://companyb.com/Autodiscover/Autodiscover.xml";

    fn tls(verdict: CertificateVerdict) -> TlsFacts {
        TlsFacts {
            handshake: TlsHandshake::Established,
            version: Some("TLSv1_3".into()),
            cipher: None,
            chain: vec![],
            verdict: Some(verdict),
            duration_seconds: 0.0,
        }
    }

    fn good() -> CertificateVerdict {
        CertificateVerdict {
            name_matches: true,
            trusted: true,
            validity: Validity::Valid,
            trust_error: None,
            validity_error: None,
            completed_by_aia: false,
        }
    }

    fn response(status: u16) -> HttpExchange {
        HttpExchange {
            method: crate::model::facts::HttpMethod::Post,
            status: Some(status),
            location: None,
            www_authenticate: vec![],
            exchange_headers: vec![],
            server: None,
            content_type: None,
            retry_after_seconds: None,
            body_bytes: 0,
            body: BodyKind::Empty,
            failure: None,
            time_to_first_byte_seconds: 0.0,
            duration_seconds: 0.0,
        }
    }

    fn with_auth(mut r: HttpExchange, header: &str) -> HttpExchange {
        r.www_authenticate.push(header.into());
        r
    }

    fn with_location(mut r: HttpExchange, location: &str) -> HttpExchange {
        r.location = Some(location.into());
        r
    }

    fn with_body(mut r: HttpExchange, body: BodyKind) -> HttpExchange {
        r.body = body;
        r
    }

    fn https(tls_facts: Option<TlsFacts>, http: Option<HttpExchange>) -> AddressResult {
        classify_address(
            URL,
            Request::HttpsPost,
            &ConnectResult::Connected,
            tls_facts.as_ref(),
            http.as_ref(),
        )
    }

    fn final_status(result: AddressResult) -> StepStatus {
        match result {
            AddressResult::Final(s) | AddressResult::Unreachable(s) => s,
            other => panic!("expected a final status, got {other:?}"),
        }
    }

    #[test]
    fn table_of_address_facts_to_status() {
        use StepStatus::*;
        let cases: Vec<(&str, AddressResult, StepStatus)> = vec![
            (
                "refused",
                classify_address(URL, Request::HttpsPost, &ConnectResult::Refused, None, None),
                ConnectRefused,
            ),
            (
                "unreachable",
                classify_address(
                    URL,
                    Request::HttpsPost,
                    &ConnectResult::Failed {
                        detail: "no route".into(),
                    },
                    None,
                    None,
                ),
                ConnectRefused,
            ),
            (
                "connect timeout",
                classify_address(URL, Request::HttpsPost, &ConnectResult::Timeout, None, None),
                Timeout,
            ),
            (
                "tls timeout",
                https(
                    Some(TlsFacts {
                        handshake: TlsHandshake::TimedOut,
                        verdict: None,
                        ..tls(good())
                    }),
                    None,
                ),
                Timeout,
            ),
            (
                "tls alert",
                https(
                    Some(TlsFacts {
                        handshake: TlsHandshake::Failed {
                            error: "alert".into(),
                        },
                        verdict: None,
                        ..tls(good())
                    }),
                    None,
                ),
                TlsHandshakeFailed,
            ),
            (
                "wrong name behind a 401",
                https(
                    Some(tls(CertificateVerdict {
                        name_matches: false,
                        ..good()
                    })),
                    Some(with_auth(response(401), "Negotiate")),
                ),
                CertNameMismatch,
            ),
            (
                "untrusted",
                https(
                    Some(tls(CertificateVerdict {
                        trusted: false,
                        ..good()
                    })),
                    Some(response(404)),
                ),
                CertUntrusted,
            ),
            (
                "expired",
                https(
                    Some(tls(CertificateVerdict {
                        validity: Validity::Expired,
                        ..good()
                    })),
                    Some(response(404)),
                ),
                CertExpired,
            ),
            (
                "not yet valid",
                https(
                    Some(tls(CertificateVerdict {
                        validity: Validity::NotYetValid,
                        ..good()
                    })),
                    None,
                ),
                CertNotYetValid,
            ),
            (
                "401 negotiate",
                https(
                    Some(tls(good())),
                    Some(with_auth(response(401), "Negotiate")),
                ),
                EndpointFound,
            ),
            (
                "401 basic realm",
                https(
                    Some(tls(good())),
                    Some(with_auth(response(401), "Basic realm=\"x\"")),
                ),
                EndpointFound,
            ),
            (
                "401 without challenge",
                https(Some(tls(good())), Some(response(401))),
                HttpStatus,
            ),
            (
                "404",
                https(Some(tls(good())), Some(response(404))),
                HttpStatus,
            ),
            (
                "500",
                https(Some(tls(good())), Some(response(500))),
                HttpStatus,
            ),
            (
                "200 html",
                https(
                    Some(tls(good())),
                    Some(with_body(response(200), BodyKind::Html)),
                ),
                NotAutodiscover,
            ),
            (
                "200 too large",
                https(
                    Some(tls(good())),
                    Some(with_body(response(200), BodyKind::TooLarge)),
                ),
                NotAutodiscover,
            ),
            (
                "200 settings",
                https(
                    Some(tls(good())),
                    Some(with_body(
                        response(200),
                        BodyKind::Autodiscover {
                            response: PoxResponse::Settings {
                                settings: Settings::default(),
                            },
                        },
                    )),
                ),
                EndpointFound,
            ),
            (
                "200 error 500",
                https(
                    Some(tls(good())),
                    Some(with_body(
                        response(200),
                        BodyKind::Autodiscover {
                            response: PoxResponse::Error {
                                code: "500".into(),
                                message: String::new(),
                            },
                        },
                    )),
                ),
                EndpointFound,
            ),
            (
                "http timeout",
                https(
                    Some(tls(good())),
                    Some(HttpExchange {
                        status: None,
                        failure: Some(HttpFailure::Timeout),
                        ..response(200)
                    }),
                ),
                Timeout,
            ),
            (
                "garbage instead of http",
                https(
                    Some(tls(good())),
                    Some(HttpExchange {
                        status: None,
                        failure: Some(HttpFailure::Protocol {
                            detail: "invalid".into(),
                        }),
                        ..response(200)
                    }),
                ),
                NotAutodiscover,
            ),
            (
                "302 without location",
                https(Some(tls(good())), Some(response(302))),
                HttpStatus,
            ),
            (
                "port 80 answers 200",
                classify_address(
                    URL,
                    Request::PlainGet,
                    &ConnectResult::Connected,
                    None,
                    Some(&response(200)),
                ),
                NotAutodiscover,
            ),
            (
                "port 80 answers 401",
                classify_address(
                    URL,
                    Request::PlainGet,
                    &ConnectResult::Connected,
                    None,
                    Some(&with_auth(response(401), "Basic")),
                ),
                HttpStatus,
            ),
        ];
        for (name, result, expected) in cases {
            assert_eq!(final_status(result), expected, "case {name}");
        }
    }

    #[test]
    fn redirects_are_followed_only_to_https_autodiscover_urls() {
        for status in [301, 302, 307, 308] {
            let result = https(
                Some(tls(good())),
                Some(with_location(
                    response(status),
                    "https://mail.example/autodiscover/autodiscover.xml",
                )),
            );
            assert_eq!(
                result,
                AddressResult::Follow(HopNext::Url {
                    url: "https://mail.example/autodiscover/autodiscover.xml".into(),
                    origin: HopOrigin::HttpRedirect { status },
                })
            );
        }
        let insecure = https(
            Some(tls(good())),
            Some(with_location(
                response(302),
                "http://mail.example/autodiscover/autodiscover.xml",
            )),
        );
        assert!(matches!(
            insecure,
            AddressResult::Refused(RedirectRefusal::NotHttps(_))
        ));
        assert_eq!(insecure.status(), Some(StepStatus::RedirectInvalid));
        // a redirect behind a bad certificate is not followed: the prompt comes first
        let behind_prompt = https(
            Some(tls(CertificateVerdict {
                trusted: false,
                ..good()
            })),
            Some(with_location(
                response(302),
                "https://mail.example/autodiscover/autodiscover.xml",
            )),
        );
        assert_eq!(
            behind_prompt,
            AddressResult::Final(StepStatus::CertUntrusted)
        );
    }

    #[test]
    fn pox_redirects_are_followed() {
        let url = https(
            Some(tls(good())),
            Some(with_body(
                response(200),
                BodyKind::Autodiscover {
                    response: PoxResponse::RedirectUrl {
                        url: "https://mail.example/autodiscover/autodiscover.xml".into(),
                    },
                },
            )),
        );
        assert!(matches!(
            url,
            AddressResult::Follow(HopNext::Url {
                origin: HopOrigin::PoxRedirectUrl,
                ..
            })
        ));
        let addr = https(
            Some(tls(good())),
            Some(with_body(
                response(200),
                BodyKind::Autodiscover {
                    response: PoxResponse::RedirectAddr {
                        address: "u@tenant.example".into(),
                    },
                },
            )),
        );
        assert_eq!(
            addr,
            AddressResult::Follow(HopNext::Address {
                address: "u@tenant.example".into()
            })
        );
        let bad = https(
            Some(tls(good())),
            Some(with_body(
                response(200),
                BodyKind::Autodiscover {
                    response: PoxResponse::RedirectAddr {
                        address: "not an address".into(),
                    },
                },
            )),
        );
        assert!(matches!(bad, AddressResult::Refused(_)));
    }

    #[test]
    fn aggregation_ignores_unreachable_addresses_when_another_answers() {
        use StepStatus::*;
        let found = AddressResult::Final(EndpointFound);
        let refused = AddressResult::Unreachable(ConnectRefused);
        let hop = aggregate(&[refused.clone(), found.clone()]);
        assert_eq!(hop.status, Some(EndpointFound));
        assert_eq!(
            aggregate(&[refused.clone(), refused.clone()]).status,
            Some(ConnectRefused)
        );
        // a connect timeout is worse than a refusal when nothing answers at all
        let hop = aggregate(&[refused, AddressResult::Unreachable(Timeout)]);
        assert_eq!(hop.status, Some(Timeout));
        // but a TLS timeout after connecting is an answer: some clients hang there
        let hop = aggregate(&[found, AddressResult::Final(Timeout)]);
        assert_eq!(hop.status, Some(Timeout));
    }

    #[test]
    fn aggregation_takes_the_worst_answer() {
        use StepStatus::*;
        let hop = aggregate(&[
            AddressResult::Final(EndpointFound),
            AddressResult::Final(CertNameMismatch),
        ]);
        assert_eq!(hop.status, Some(CertNameMismatch));
        let hop = aggregate(&[
            AddressResult::Final(EndpointFound),
            AddressResult::Final(HttpStatus),
        ]);
        assert_eq!(hop.status, Some(HttpStatus));
        let same = aggregate(&[
            AddressResult::Final(EndpointFound),
            AddressResult::Final(EndpointFound),
        ]);
        assert_eq!(same.status, Some(EndpointFound));
        let follow = AddressResult::Follow(HopNext::Address {
            address: "a@b".into(),
        });
        let hop = aggregate(&[follow.clone(), follow]);
        assert_eq!(hop.status, None);
        assert!(hop.next.is_some());
        assert_eq!(aggregate(&[]).status, Some(DnsNoRecord));
    }

    #[test]
    fn plausible_addresses() {
        assert!(MailAddress::parse("a@b.example").is_ok());
        assert!(MailAddress::parse("ab.example").is_err());
        assert!(MailAddress::parse("@b.example").is_err());
        assert!(MailAddress::parse("a b@c").is_err());
    }

    #[test]
    fn microsoft365_answers_table() {
        use crate::model::facts::Microsoft365Json;
        const QUERY: &str = "https://outlook.office365.com/autodiscover/autodiscover.json/v1.0/a@b.example?Protocol=AutodiscoverV1";
        let m365 = |tls_facts: TlsFacts, http: HttpExchange| {
            classify_address(
                QUERY,
                Request::Microsoft365Get,
                &ConnectResult::Connected,
                Some(&tls_facts),
                Some(&http),
            )
        };
        let json = |url: &str| {
            with_body(
                response(200),
                BodyKind::Microsoft365 {
                    answer: Microsoft365Json::Endpoint { url: url.into() },
                },
            )
        };
        // Known: the POX URL it names is followed.
        assert_eq!(
            m365(
                tls(good()),
                json("https://mail.b.example/autodiscover/autodiscover.xml")
            ),
            AddressResult::Follow(HopNext::Url {
                url: "https://mail.b.example/autodiscover/autodiscover.xml".into(),
                origin: HopOrigin::Microsoft365,
            })
        );
        // A Url Outlook would not POST to is refused, as any redirect.
        assert!(matches!(
            m365(
                tls(good()),
                json("http://mail.b.example/autodiscover/autodiscover.xml")
            ),
            AddressResult::Refused(RedirectRefusal::NotHttps(_))
        ));
        // Microsoft's 302 for unknown users is never followed.
        let moved = with_location(response(302), "https://outlook.office365.com/elsewhere");
        assert_eq!(
            m365(tls(good()), moved),
            AddressResult::Final(StepStatus::HttpStatus)
        );
        // 200 that is not the JSON answer.
        assert_eq!(
            m365(tls(good()), with_body(response(200), BodyKind::Html)),
            AddressResult::Final(StepStatus::NotAutodiscover)
        );
        // A certificate failure on the query itself is a failed background request, not a
        // prompt: the classic steps decide.
        let mut bad = good();
        bad.trusted = false;
        assert_eq!(
            m365(
                tls(bad),
                json("https://mail.b.example/autodiscover/autodiscover.xml")
            ),
            AddressResult::Final(StepStatus::TlsHandshakeFailed)
        );
    }
}
