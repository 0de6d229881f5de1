//! The security manual: why the sessions behave as they do.
//!
//! Like rustls' `manual`, these pages hold no code. They explain the
//! defaults that protect a mail server or client against the attacks that
//! broke real implementations, and what the knobs in
//! [`server::Config`](crate::server::Config) trade away when changed.
//!
//! - [`_01_starttls_injection`]: plaintext injected around `STARTTLS`
//!   (CVE-2011-0411 and its 2021 revival), and why a sans-IO core is the
//!   right place to stop it.
//! - [`_02_smtp_smuggling`]: ending `DATA` anywhere but at `CRLF.CRLF`
//!   (CVE-2023-51764/51765/51766) and the bare-line-ending policy.
//! - [`_03_limits_and_defaults`]: every limit, timeout and default of the
//!   server session, with the RFC or the precedent behind it.

pub mod _01_starttls_injection;
pub mod _02_smtp_smuggling;
pub mod _03_limits_and_defaults;
