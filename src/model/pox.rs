//! What an Autodiscover server answered to the POX request, as data.

use super::settings::Settings;
use serde::{Deserialize, Serialize};

/// What an Autodiscover server said, once its body is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PoxResponse {
    /// `<Action>settings</Action>`: the configuration, the discovery is over.
    Settings {
        /// What the server announced.
        settings: Settings,
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
