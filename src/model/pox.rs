//! What an Autodiscover server answered to the POX request, as data.

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

/// A `settings` answer (outlook response schema 2006a), as announced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `User/DisplayName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `User/AutoDiscoverSMTPAddress`: the mailbox's primary address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autodiscover_smtp_address: Option<String>,
    /// The `Account/Protocol` sections, in document order.
    pub protocols: Vec<ProtocolSettings>,
}

/// One `<Protocol>` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolSettings {
    /// `EXCH`, `EXPR`, `WEB`, `mapiHttp`, `IMAP`, `POP3`, `SMTP`, ... (the `Type` element or
    /// attribute).
    #[serde(rename = "type")]
    pub kind: String,
    /// The `Version` attribute (MAPI over HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `Server`: the RPC server (EXCH), the Outlook Anywhere proxy host (EXPR), the IMAP/POP3/SMTP
    /// server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `Port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `SSL` (`on`/`off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<bool>,
    /// `Encryption` (`None`, `SSL`, `TLS`, `Auto`): overrides `SSL` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// `SPA` (`on`/`off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spa: Option<bool>,
    /// `AuthPackage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_package: Option<String>,
    /// The service URLs of the section (`EwsUrl`, `OABUrl`, `MailStore/ExternalUrl`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<NamedUrl>,
    /// Elements the probe does not interpret, kept as they were (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherElement>,
}

/// A URL a settings section names, with the element that named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedUrl {
    /// The element path inside the section: `EwsUrl`, `MailStore/ExternalUrl`,
    /// `External/OWAUrl`, `Internal/Protocol/ASUrl`, ...
    pub element: String,
    /// The URL as announced.
    pub url: String,
}

/// An element the probe keeps without interpreting it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherElement {
    /// The element path inside the section.
    pub element: String,
    /// Its text (shortened).
    pub text: String,
}
