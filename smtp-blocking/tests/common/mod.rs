//! Shared test infrastructure: a fake DNS server, TLS test servers, and the
//! MX scenario table's stage (scripted SMTP servers).
//!
//! Each integration test binary uses only part of it.
#![allow(dead_code)]

pub(crate) mod dns;
pub(crate) mod scripted;
pub(crate) mod server;
pub(crate) mod stage;
pub(crate) mod tls;
