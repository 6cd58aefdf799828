//! Fact gathering: DNS, TCP, TLS and HTTP, each phase bounded by a timeout.

pub mod certificate;
pub mod connect;
pub mod dns;
pub mod http;
pub mod mail;
pub mod tls;
