//! The host plan: which host and address to connect to next.

use core::net::IpAddr;
use std::collections::BTreeSet;

use thiserror::Error;

use super::answer::MxHost;
use super::name::HostName;
use crate::dns::Severity;

/// Which address families to use, and in which order within one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FamilyPreference {
    /// IPv4 addresses before IPv6 ones (the default; see [`PlanConfig`]).
    #[default]
    Ipv4First,
    /// IPv6 addresses before IPv4 ones (RFC 6724 §10.3's default order).
    Ipv6First,
    /// Only IPv4 addresses.
    Ipv4Only,
    /// Only IPv6 addresses.
    Ipv6Only,
}

impl FamilyPreference {
    /// Sort rank of an address, or `None` if its family is excluded.
    fn rank(self, ip: &IpAddr) -> Option<u8> {
        match (self, ip) {
            (Self::Ipv4First | Self::Ipv4Only, IpAddr::V4(_))
            | (Self::Ipv6First | Self::Ipv6Only, IpAddr::V6(_)) => Some(0),
            (Self::Ipv4First, IpAddr::V6(_)) | (Self::Ipv6First, IpAddr::V4(_)) => Some(1),
            (Self::Ipv4Only, IpAddr::V6(_)) | (Self::Ipv6Only, IpAddr::V4(_)) => None,
        }
    }
}

/// How a [`HostPlan`] is built and walked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanConfig {
    /// Address family order. Default [`FamilyPreference::Ipv4First`]:
    /// receivers commonly hold IPv6 senders to stricter rules (reverse DNS,
    /// authentication), and a sender whose IPv6 setup is incomplete loses
    /// mail there that it would deliver over IPv4; a sender with a proper
    /// IPv6 setup opts in with one field.
    pub family: FamilyPreference,
    /// Use the A/AAAA records that came in the MX answer's additional section
    /// ([`MxHost::hints`]) instead of looking the host up. Default `true`:
    /// they come from the same resolver that supplied the MX records, and
    /// they save two round trips per host.
    pub use_hints: bool,
    /// Names under which this client is itself an MX (RFC 5321 §5.1): when one
    /// is listed, every host of equal or higher preference is dropped, so
    /// that a backup MX never hands mail to itself or to a host it outranks.
    /// Default empty (a pure client). Compared case-insensitively.
    pub local_names: Vec<HostName>,
    /// At most this many addresses are tried per host (at least 1 is always
    /// allowed). Default 4: dual-stack hosts rarely publish more, and it
    /// bounds how long one unreachable host can hold up a delivery.
    pub max_addresses_per_host: usize,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            family: FamilyPreference::default(),
            use_hints: true,
            local_names: Vec::new(),
            max_addresses_per_host: 4,
        }
    }
}

/// Why no plan can be built. Both are permanent failures.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The list of hosts is empty.
    #[error("no mail exchanger to try")]
    NoHosts,
    /// This client is the most preferred MX of the domain (one of
    /// [`PlanConfig::local_names`] has the lowest preference), so no host
    /// may be tried: RFC 5321 §5.1, "mail loops back to myself" (enhanced
    /// status 5.4.6 in RFC 3463).
    #[error("mail loops back to this host (local MX preference {preference})")]
    MailLoop {
        /// The lowest preference among the local names.
        preference: u16,
    },
}

/// A plan method called when the plan is not at the matching step. The
/// plan is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlanUsageError {
    /// `resolved` or `resolution_failed` was called, but the plan is not at a
    /// [`Next::Resolve`] step.
    #[error("the host plan is not waiting for addresses")]
    NotResolving,
    /// `on_connect_failed` or `on_temporary_failure` was called, but the plan
    /// is not at a [`Next::Connect`] step.
    #[error("the host plan has no connection target")]
    NotConnecting,
}

/// One connection to make: a host and one of its addresses. Connect to
/// port 25 for relay (RFC 5321 §4.5.4.1 leaves the port to the transport),
/// and use [`host`](Self::host)'s name for TLS verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    host: &'a MxHost,
    ip: IpAddr,
}

impl<'a> Target<'a> {
    /// The mail exchanger.
    pub fn host(&self) -> &'a MxHost {
        self.host
    }

    /// The address to connect to.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

/// What the plan wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Next<'a> {
    /// Look up the host's A and AAAA records, then call
    /// [`HostPlan::resolved`] or [`HostPlan::resolution_failed`].
    Resolve(&'a MxHost),
    /// Connect here. Then, on failure to connect (or to set up TLS, or a
    /// greeting that never came), [`HostPlan::on_connect_failed`]; on a
    /// 4xx reply from the host, [`HostPlan::on_temporary_failure`]. A 5xx
    /// reply to the transaction is final and ends the walk.
    Connect(Target<'a>),
    /// Every host has been tried. `Permanent` only when no host had any
    /// usable address and no lookup failed temporarily — there is nothing to
    /// connect to and waiting will not change that; otherwise `Temporary`.
    Exhausted(Severity),
}

/// Where a host stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Addresses {
    /// Not looked up yet.
    Pending,
    /// Ordered, filtered, never empty while the cursor is on the host.
    Ready(Vec<IpAddr>),
    /// The lookup failed, or found nothing usable.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    host: MxHost,
    addresses: Addresses,
}

/// A cursor over the hosts of a delivery, address by address.
///
/// Rules (RFC 5321 §5.1 and what Postfix and Exim do in practice):
///
/// - Hosts are tried in the given order (the order of [`MxAnswer::Hosts`],
///   preference ascending), each host's addresses in
///   [`PlanConfig::family`] order, at most
///   [`PlanConfig::max_addresses_per_host`] of them.
/// - Hosts are looked up lazily, when the cursor reaches them, so a
///   delivery that succeeds at the first host costs no lookups for the rest.
/// - A failed connection moves to the next address of the same host, then to
///   the next host. A 4xx reply moves to the next **host**: the other
///   addresses of a host reach the same server, which has just said "not
///   now".
/// - Unspecified (`0.0.0.0`, `::`), multicast and broadcast addresses are
///   dropped; loopback and private addresses are kept (the transport's
///   policy).
/// - [`Next::Exhausted`] at the end, with its [`Severity`].
///
/// The name says what it is — a cursor over hosts and addresses — and
/// leaves "delivery" to the transports' engines and "transaction" to the
/// client session.
///
/// [`MxAnswer::Hosts`]: super::MxAnswer::Hosts
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    slots: Vec<Slot>,
    /// Index of the current slot.
    host: usize,
    /// Index of the current address in the current slot.
    address: usize,
    /// Whether anything failed temporarily so far.
    temporary: bool,
    family: FamilyPreference,
    max_addresses: usize,
}

impl HostPlan {
    /// A plan over `hosts`, in the given order, after the
    /// [local names](PlanConfig::local_names) rule.
    pub fn new(hosts: Vec<MxHost>, config: &PlanConfig) -> Result<Self, PlanError> {
        let hosts = without_local(hosts, &config.local_names)?;
        let max_addresses = config.max_addresses_per_host.max(1);
        let slots = hosts
            .into_iter()
            .map(|host| {
                let hinted = if config.use_hints {
                    order(host.hints(), config.family, max_addresses)
                } else {
                    Vec::new()
                };
                let addresses = if hinted.is_empty() {
                    Addresses::Pending
                } else {
                    Addresses::Ready(hinted)
                };
                Slot { host, addresses }
            })
            .collect();
        let mut plan = Self {
            slots,
            host: 0,
            address: 0,
            temporary: false,
            family: config.family,
            max_addresses,
        };
        plan.settle();
        Ok(plan)
    }

    /// What to do next. Calling it again without reporting anything gives the
    /// same answer.
    pub fn next_target(&self) -> Next<'_> {
        let Some(slot) = self.slots.get(self.host) else {
            return Next::Exhausted(self.exhausted_severity());
        };
        match &slot.addresses {
            Addresses::Pending => Next::Resolve(&slot.host),
            Addresses::Ready(ips) => match ips.get(self.address) {
                Some(&ip) => Next::Connect(Target {
                    host: &slot.host,
                    ip,
                }),
                // settle() never leaves the cursor past a host's addresses.
                None => Next::Exhausted(self.exhausted_severity()),
            },
            // settle() never leaves the cursor on a failed host.
            Addresses::Failed => Next::Exhausted(self.exhausted_severity()),
        }
    }

    /// Whether every host has been tried.
    pub fn is_exhausted(&self) -> bool {
        matches!(self.next_target(), Next::Exhausted(_))
    }

    /// The hosts of the plan, in order (after the local names rule).
    pub fn hosts(&self) -> impl Iterator<Item = &MxHost> {
        self.slots.iter().map(|slot| &slot.host)
    }

    /// Reports the addresses found for the host of [`Next::Resolve`]: the A
    /// and AAAA answers together, in any order. They are filtered, ordered by
    /// family and capped. If none is usable the host is skipped; if one of
    /// the two lookups failed temporarily and the other found nothing, call
    /// [`resolution_failed`](Self::resolution_failed) with
    /// [`Severity::Temporary`] instead.
    pub fn resolved(
        &mut self,
        addresses: impl IntoIterator<Item = IpAddr>,
    ) -> Result<(), PlanUsageError> {
        let (family, max) = (self.family, self.max_addresses);
        let slot = self.pending_slot()?;
        let ips: Vec<IpAddr> = addresses.into_iter().collect();
        let ordered = order(&ips, family, max);
        slot.addresses = if ordered.is_empty() {
            Addresses::Failed
        } else {
            Addresses::Ready(ordered)
        };
        self.address = 0;
        self.settle();
        Ok(())
    }

    /// Reports that the host of [`Next::Resolve`] could not be looked up:
    /// `Permanent` for NXDOMAIN, `Temporary` for SERVFAIL, timeouts and
    /// unusable answers. The plan moves to the next host.
    pub fn resolution_failed(&mut self, severity: Severity) -> Result<(), PlanUsageError> {
        let slot = self.pending_slot()?;
        slot.addresses = Addresses::Failed;
        if severity == Severity::Temporary {
            self.temporary = true;
        }
        self.settle();
        Ok(())
    }

    /// Reports that connecting to the [`Next::Connect`] target failed (refused,
    /// timed out, TLS handshake failed, connection lost before a reply). The
    /// plan moves to the host's next address, or to the next host.
    pub fn on_connect_failed(&mut self) -> Result<(), PlanUsageError> {
        self.connect_target()?;
        self.temporary = true;
        self.address += 1;
        self.settle();
        Ok(())
    }

    /// Reports a 4xx reply from the [`Next::Connect`] target (a 421 greeting,
    /// a 4xx to EHLO, MAIL or DATA). The plan moves to the next host, skipping
    /// this host's other addresses.
    pub fn on_temporary_failure(&mut self) -> Result<(), PlanUsageError> {
        self.connect_target()?;
        self.temporary = true;
        self.host += 1;
        self.address = 0;
        self.settle();
        Ok(())
    }

    fn pending_slot(&mut self) -> Result<&mut Slot, PlanUsageError> {
        match self.slots.get_mut(self.host) {
            Some(slot) if slot.addresses == Addresses::Pending => Ok(slot),
            _ => Err(PlanUsageError::NotResolving),
        }
    }

    fn connect_target(&self) -> Result<(), PlanUsageError> {
        match self.next_target() {
            Next::Connect(_) => Ok(()),
            _ => Err(PlanUsageError::NotConnecting),
        }
    }

    /// Moves the cursor past hosts that have nothing left to try, so that it
    /// rests on a pending host, on an address, or past the end.
    fn settle(&mut self) {
        while let Some(slot) = self.slots.get(self.host) {
            let done = match &slot.addresses {
                Addresses::Pending => false,
                Addresses::Ready(ips) => self.address >= ips.len(),
                Addresses::Failed => true,
            };
            if !done {
                return;
            }
            self.host += 1;
            self.address = 0;
        }
    }

    fn exhausted_severity(&self) -> Severity {
        if self.temporary {
            Severity::Temporary
        } else {
            Severity::Permanent
        }
    }
}

/// The hosts a client named `local_names` may hand mail to (RFC 5321 §5.1):
/// when one of its names is listed, every host of equal or higher preference
/// is dropped. Shared by [`HostPlan`] and the [walk](super::Walk).
pub(super) fn without_local(
    mut hosts: Vec<MxHost>,
    local_names: &[HostName],
) -> Result<Vec<MxHost>, PlanError> {
    if hosts.is_empty() {
        return Err(PlanError::NoHosts);
    }
    let local = hosts
        .iter()
        .filter(|h| local_names.contains(h.name()))
        .map(MxHost::preference)
        .min();
    if let Some(preference) = local {
        hosts.retain(|h| h.preference() < preference);
        if hosts.is_empty() {
            return Err(PlanError::MailLoop { preference });
        }
    }
    Ok(hosts)
}

/// Usable addresses of `ips`, deduplicated, in `family` order (stable within
/// a family), at most `max`. Shared by [`HostPlan`] and the
/// [walk](super::Walk).
pub(super) fn order(ips: &[IpAddr], family: FamilyPreference, max: usize) -> Vec<IpAddr> {
    let mut seen = BTreeSet::new();
    let mut ranked: Vec<(u8, IpAddr)> = ips
        .iter()
        .filter(|ip| usable(ip))
        .filter(|ip| seen.insert(**ip))
        .filter_map(|ip| family.rank(ip).map(|rank| (rank, *ip)))
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, ip)| ip).take(max).collect()
}

/// Whether an address can be the destination of a TCP connection.
fn usable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}
