//! TEMPORARY STUB (not committed): replaced by the helper's module.
#![allow(missing_docs, unreachable_pub, dead_code)]
use smtp_proto::mx::{HostName, MxAnswer, Severity};
use std::io;
use std::net::IpAddr;
use std::time::Instant;
#[derive(Debug)]
pub struct DnsClient;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(u64);
#[derive(Debug)]
pub struct Resolved {
    pub id: LookupId,
    pub outcome: LookupOutcome,
}
#[derive(Debug)]
pub enum LookupOutcome {
    Mx(Result<MxAnswer, DnsFailure>),
    Addresses(Result<Vec<IpAddr>, DnsFailure>),
}
#[derive(Debug, Clone, thiserror::Error)]
#[error("dns")]
pub struct DnsFailure;
impl DnsFailure {
    pub fn severity(&self) -> Severity {
        Severity::Temporary
    }
    pub fn name(&self) -> &str {
        ""
    }
}
impl DnsClient {
    pub const TOKENS: usize = 10;
    pub fn new(_: &smtp_blocking::Resolver, _: &mio::Registry, _: mio::Token) -> io::Result<Self> {
        Ok(Self)
    }
    pub fn owns(&self, _: mio::Token) -> bool {
        false
    }
    pub fn lookup_mx(&mut self, _: &mio::Registry, _: Instant, _: &HostName) -> LookupId {
        LookupId(0)
    }
    pub fn lookup_addresses(&mut self, _: &mio::Registry, _: Instant, _: &HostName) -> LookupId {
        LookupId(0)
    }
    pub fn cancel(&mut self, _: LookupId) {}
    pub fn handle_event(&mut self, _: &mio::Registry, _: Instant, _: &mio::event::Event) {}
    pub fn handle_timeout(&mut self, _: &mio::Registry, _: Instant) {}
    pub fn next_deadline(&self) -> Option<Instant> {
        None
    }
    pub fn poll_resolved(&mut self) -> Option<Resolved> {
        None
    }
    pub fn in_flight(&self) -> usize {
        0
    }
}
