//! Per-client rates (Postfix's `anvil`): connections, messages and
//! recipients per client address and time unit, in bounded memory.
//!
//! A server shares one [`ClientRates`] among all its connections (the
//! transport keeps it behind a lock); each connection reports its events
//! with the time and the client's address and learns whether the client is
//! over its limit:
//!
//! - a connection over [`RateLimits::connections`] is refused with
//!   `421 4.7.0 <host> Error: too many connections from <ip>` instead of
//!   the greeting (Postfix `smtpd_client_connection_rate_limit`);
//! - a `MAIL` over [`RateLimits::messages`] gets `450 4.7.1 Error: too much
//!   mail from <ip>`, a `RCPT` over [`RateLimits::recipients`] `450 4.7.1
//!   Error: too many recipients from <ip>` (`smtpd_client_message_rate_limit`,
//!   `smtpd_client_recipient_rate_limit`): transient, so a legitimate
//!   sender only slows down.
//!
//! Counting is per fixed window of [`RateLimits::window`] per client, as
//! anvil does: the first event of a client opens its window, the counts
//! start again once it has passed. IPv4 clients count per address, IPv6
//! clients per /64 (one subscriber's network: a host can take any address
//! in it), and an IPv4-mapped IPv6 address as its IPv4 address.
//!
//! Memory is bounded by [`RateLimits::max_clients`]: windows are kept in
//! the order they opened, expired ones are dropped as time passes, and when
//! the table is full the oldest window is forgotten first. A flood from
//! many sources can thus make the table forget a client early (it starts
//! over with a fresh window), never make it grow. Loopback clients and the
//! [`RateLimits::exempt`] networks are never counted.
//!
//! No clock here: every call takes `now` (the virtual clock of the tests).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use smtp_proto::server::{ClientRates, RateLimits};
//!
//! let mut limits = RateLimits::default();
//! limits.messages = Some(2);
//! let mut rates = ClientRates::new(limits);
//! let (t0, ip) = (Instant::now(), "192.0.2.7".parse().unwrap());
//! assert!(rates.message(t0, ip).is_ok());
//! assert!(rates.message(t0, ip).is_ok());
//! assert!(rates.message(t0, ip).is_err()); // 450 4.7.1 for this MAIL
//! assert!(rates.message(t0 + Duration::from_secs(60), ip).is_ok()); // a new window
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::proxy::Cidr;
use crate::reply::{EnhancedStatusCode, Reply, ReplyCode};

/// The limits, all per client and [`RateLimits::window`]. `None`: not
/// limited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimits {
    /// Connections per window. Default `None`, as Postfix's `0`: a rate
    /// that suits one site blocks another's legitimate bulk sender, so the
    /// operator picks it.
    pub connections: Option<u32>,
    /// `MAIL` commands per window. Default `None` (see above).
    pub messages: Option<u32>,
    /// `RCPT` commands per window. Default `None` (see above).
    pub recipients: Option<u32>,
    /// The time unit. Default 60 s (Postfix's `anvil_rate_time_unit`).
    pub window: Duration,
    /// Clients tracked at once; beyond, the oldest window is forgotten.
    /// Default 100 000 (a few MB), far more than the distinct clients an MX
    /// sees in a minute.
    pub max_clients: usize,
    /// Networks never counted (Postfix's
    /// `smtpd_client_event_limit_exceptions`, which defaults to
    /// `$mynetworks`). Loopback is always exempt unless
    /// [`RateLimits::count_loopback`] is set.
    pub exempt: Vec<Cidr>,
    /// Count loopback clients too (tests, or a server behind a local
    /// proxy that does not send the PROXY protocol). Default `false`.
    pub count_loopback: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            connections: None,
            messages: None,
            recipients: None,
            window: Duration::from_secs(60),
            max_clients: 100_000,
            exempt: Vec::new(),
            count_loopback: false,
        }
    }
}

impl RateLimits {
    /// Whether any rate is limited.
    pub fn is_active(&self) -> bool {
        self.connections.is_some() || self.messages.is_some() || self.recipients.is_some()
    }
}

/// Which rate a client went over; [`RateExceeded::reply`] is the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateExceeded {
    /// The rate.
    pub what: RateKind,
    /// The client (as counted: an IPv6 client's /64 network).
    pub client: IpAddr,
}

/// The three rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateKind {
    /// Connections.
    Connections,
    /// `MAIL` commands.
    Messages,
    /// `RCPT` commands.
    Recipients,
}

impl RateExceeded {
    /// The reply: `421 4.7.0 <hostname> Error: too many connections from
    /// <ip>` (sent instead of the greeting; the connection then closes),
    /// `450 4.7.1 Error: too much mail from <ip>` to a `MAIL`, `450 4.7.1
    /// Error: too many recipients from <ip>` to a `RCPT` (Postfix's texts;
    /// RFC 3463 X.7.0 other security, X.7.1 delivery not authorized).
    pub fn reply(&self, hostname: &str) -> Reply<'static> {
        let (code, status, text) = match self.what {
            RateKind::Connections => (
                ReplyCode::SERVICE_NOT_AVAILABLE,
                EnhancedStatusCode::SECURITY_TEMPORARY,
                format!(
                    "{hostname} Error: too many connections from {}",
                    self.client
                ),
            ),
            RateKind::Messages => (
                ReplyCode::MAILBOX_BUSY,
                EnhancedStatusCode::new(4, 7, 1).unwrap_or(EnhancedStatusCode::SECURITY_TEMPORARY),
                format!("Error: too much mail from {}", self.client),
            ),
            RateKind::Recipients => (
                ReplyCode::MAILBOX_BUSY,
                EnhancedStatusCode::new(4, 7, 1).unwrap_or(EnhancedStatusCode::SECURITY_TEMPORARY),
                format!("Error: too many recipients from {}", self.client),
            ),
        };
        // The hostname is a validated domain and the address is printable,
        // so the text holds no CR or LF; the fixed text is the fallback.
        Reply::with_enhanced(code, status, text).unwrap_or_else(|_| {
            Reply::with_enhanced(code, status, "Error: rate limit exceeded")
                .unwrap_or_else(|_| Reply::new(code, "rate limit").expect("constant reply"))
        })
    }
}

/// One client's window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    counts: [u32; 3],
}

/// The per-client counters. See the [module docs](self).
#[derive(Debug)]
pub struct ClientRates {
    limits: RateLimits,
    windows: HashMap<IpAddr, Window>,
    /// Clients in the order their windows opened (one entry per open
    /// window: an expired one is popped before its client opens another).
    order: VecDeque<(IpAddr, Instant)>,
}

impl ClientRates {
    /// Empty counters enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Clients tracked now (at most [`RateLimits::max_clients`]).
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    /// Counts a connection from `ip`.
    ///
    /// # Errors
    ///
    /// [`RateExceeded`] when it is over the connection rate: refuse it.
    pub fn connect(&mut self, now: Instant, ip: IpAddr) -> Result<(), RateExceeded> {
        self.count(now, ip, RateKind::Connections, self.limits.connections)
    }

    /// Counts a `MAIL` from `ip`.
    ///
    /// # Errors
    ///
    /// [`RateExceeded`] when it is over the message rate: answer 450.
    pub fn message(&mut self, now: Instant, ip: IpAddr) -> Result<(), RateExceeded> {
        self.count(now, ip, RateKind::Messages, self.limits.messages)
    }

    /// Counts a `RCPT` from `ip`.
    ///
    /// # Errors
    ///
    /// [`RateExceeded`] when it is over the recipient rate: answer 450.
    pub fn recipient(&mut self, now: Instant, ip: IpAddr) -> Result<(), RateExceeded> {
        self.count(now, ip, RateKind::Recipients, self.limits.recipients)
    }

    fn count(
        &mut self,
        now: Instant,
        ip: IpAddr,
        what: RateKind,
        limit: Option<u32>,
    ) -> Result<(), RateExceeded> {
        let Some(limit) = limit else {
            return Ok(());
        };
        let client = client_key(ip);
        let loopback = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
            IpAddr::V4(v4) => v4.is_loopback(),
        };
        if (loopback && !self.limits.count_loopback)
            || self.limits.exempt.iter().any(|net| net.contains(ip))
        {
            return Ok(());
        }
        self.expire(now);
        let window = self.limits.window;
        let fresh = match self.windows.get(&client) {
            Some(w) => now.saturating_duration_since(w.start) >= window,
            None => true,
        };
        if fresh {
            if !self.windows.contains_key(&client) {
                self.make_room();
            }
            self.windows.insert(
                client,
                Window {
                    start: now,
                    counts: [0; 3],
                },
            );
            self.order.push_back((client, now));
        }
        let Some(w) = self.windows.get_mut(&client) else {
            return Ok(());
        };
        let slot = match what {
            RateKind::Connections => 0,
            RateKind::Messages => 1,
            RateKind::Recipients => 2,
        };
        let count = w.counts.get_mut(slot).map_or(0, |c| {
            *c = c.saturating_add(1);
            *c
        });
        if count > limit {
            Err(RateExceeded { what, client })
        } else {
            Ok(())
        }
    }

    /// Drops the windows that have passed (the oldest are in front).
    fn expire(&mut self, now: Instant) {
        while let Some(&(client, start)) = self.order.front() {
            if now.saturating_duration_since(start) < self.limits.window {
                break;
            }
            self.order.pop_front();
            if self.windows.get(&client).is_some_and(|w| w.start == start) {
                self.windows.remove(&client);
            }
        }
    }

    /// Forgets the oldest windows until a new client fits.
    fn make_room(&mut self) {
        let max = self.limits.max_clients.max(1);
        while self.windows.len() >= max {
            let Some((client, start)) = self.order.pop_front() else {
                break;
            };
            if self.windows.get(&client).is_some_and(|w| w.start == start) {
                self.windows.remove(&client);
            }
        }
    }
}

/// The counted client: an IPv4 address, an IPv6 /64, a mapped IPv4
/// address as IPv4.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !(u128::MAX >> 64);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
        v4 => v4,
    }
}
