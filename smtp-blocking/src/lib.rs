//! # smtp-blocking: send mail from simple programs
//!
//! A blocking `std::net` + rustls transport around [`smtp_proto`]'s client
//! session: connect, STARTTLS or implicit TLS, AUTH, send, and delivery
//! straight to a domain's MX hosts. It holds no protocol logic of its own:
//! every byte it reads goes into the core, every byte it writes comes out of it.
//!
//! This crate is filled by the smtp-blocking issue; today it only reserves
//! its place in the workspace.
#![forbid(unsafe_code)]
