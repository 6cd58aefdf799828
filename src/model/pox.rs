//! What an Autodiscover server answered to the POX request, as data.

use serde::{Deserialize, Serialize};

/// What an Autodiscover server said, once its body is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PoxResponse {
    /// `<Action>settings</Action>`: the configuration, the discovery is over.
    Settings {
        /// The display name of the mailbox, when the server gave one.
        #[serde(skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// The protocol sections (`EXCH`, `EXPR`, `WEB`, ...).
        protocols: Vec<PoxProtocol>,
    },
    /// `<Action>redirectAddr</Action>`: start over with another address.
    RedirectAddr {
        /// The new address.
        address: String,
    },
    /// `<Action>redirectUrl</Action>`: POST the same request to another URL.
    RedirectUrl {
        /// The new URL.
        url: String,
    },
    /// `<Error>`: the service answered but refused the request.
    Error {
        /// The numeric code (500, 501, 600, 601, 602, 603).
        code: String,
        /// The message, if any.
        message: String,
    },
}

/// One `<Protocol>` section of a settings response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoxProtocol {
    /// `EXCH`, `EXPR`, `WEB`, `EXHTTP`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The server name, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The EWS URL, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ews_url: Option<String>,
}
