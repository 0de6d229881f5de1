//! # smtp-mio: SMTP on mio event loops
//!
//! An SMTP server that holds thousands of connections on a few threads, and a
//! delivery engine that runs many client sessions at once, both driving
//! [`smtp_proto`]'s sans-IO sessions with rustls for TLS.
//!
//! This crate is filled by the smtp-mio issues; today it only reserves its
//! place in the workspace.
#![forbid(unsafe_code)]
