//! The Autodiscover protocol as Outlook implements it, without any I/O: the POX wire format,
//! redirect rules, SRV ordering, and the decision that turns observed facts into a verdict.

pub mod classify;
pub mod destination;
pub mod microsoft365;
pub mod pox;
pub mod redirect;
pub mod settings;
pub mod srv;
pub mod verdict;
