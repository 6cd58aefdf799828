//! A simulated world of DNS and TLS/HTTP servers on loopback, used by the tests and by `demo`.
//! Only the socket layer is simulated (through [`world::LabConnector`]): DNS, TLS and HTTP are
//! the production code talking real protocols to real servers.

pub mod dns_server;
pub mod mail;
pub mod pki;
pub mod scenarios;
pub mod site;
pub mod world;
