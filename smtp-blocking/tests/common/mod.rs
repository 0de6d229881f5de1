//! Shared test infrastructure: a fake DNS server and TLS test servers.
//!
//! Each integration test binary uses only part of it.
#![allow(dead_code)]

pub(crate) mod dns;
pub(crate) mod server;
pub(crate) mod tls;
