//! Shared helpers for the workspace's integration tests and benchmarks.
//!
//! The tests themselves live in `tests/tests/`, the benchmarks in
//! `tests/benches/`. Nothing here is published.

pub mod mx_scenarios;
pub mod pair;
pub mod peers;
pub mod std_server;
pub mod timing;
pub mod transcript;
