//! The vocabulary of the whole program, as plain data: names, steps, what the network observed,
//! the verdict and the report. Every other layer builds on this one; it depends on none of them.

pub mod address;
pub mod facts;
pub mod finding;
pub mod history;
pub mod labels;
pub mod pox;
pub mod report;
pub mod settings;
pub mod step;
pub mod text;
pub mod url_parts;
