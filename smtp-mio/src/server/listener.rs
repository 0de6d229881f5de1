//! Listening sockets for N event loops, and the connection limits checked at
//! accept.
//!
//! ## One address, one server
//!
//! [`ListenerSet::bind`] binds one socket per address *without*
//! `SO_REUSEPORT`, so the address belongs to this server alone: any other
//! socket on it — a second copy of the server started by mistake, another
//! program — gets `EADDRINUSE`, and the error names the address
//! (`cannot listen on 127.0.0.1:2525: Address already in use`). Every
//! event loop registers its own duplicate of that one socket: a connection
//! wakes the loops waiting on it, the first `accept` wins and the others
//! get `WouldBlock`. That is correct, costs a wasted wake-up per loop and
//! connection, and balances by load: the loop with the least to do tends
//! to be first to accept.
//!
//! Why not one `SO_REUSEPORT` socket per loop, which lets the kernel
//! spread connections evenly? On Linux a reuseport group admits *any*
//! later socket that sets the option under the same effective UID, so a
//! second server on the same port starts without a word and takes a share
//! of the connections — and of the mail. The kernel checks conflicts
//! against the sockets already bound, and nothing in between works: a
//! first socket without the option keeps out our own other sockets too;
//! clearing the option after binding does not close the group (the port's
//! bind bucket remembers that it admits reuse); closing it with a BPF
//! steering program needs unsafe code this crate forbids. Exclusive is
//! what an operator expects of a mail server's port, so it is the default.
//!
//! [`ListenerSet::bind_reuse_port`] is the other choice, for whoever wants
//! the kernel's balancing and accepts that anyone of the same user can
//! join — or wants exactly that, for a restart where the new process joins
//! the group before the old one stops. Where the option is missing it
//! falls back to the shared socket.
//!
//! All sockets are non-blocking, close-on-exec, have `SO_REUSEADDR` (a
//! restarted server can bind while old connections sit in `TIME_WAIT`; on
//! Linux and the BSDs it never lets two sockets *listen* on one address)
//! and a backlog of [`BACKLOG`]. IPv6 sockets are `IPV6_V6ONLY`, so
//! `[::]:25` and `0.0.0.0:25` can be listened on side by side and each
//! address family is asked for explicitly.
//!
//! ## Limits
//!
//! A [`ConnectionLimiter`] counts open connections in total and per client
//! address and hands out a [`ConnectionGuard`] per accepted connection that
//! gives its slot back when dropped, so no path (error, timeout, panic in a
//! handler) can leak a slot. Beyond a limit the server answers `421` and
//! closes (RFC 5321 §3.8). IPv6 clients are counted per /64 network by
//! default, because one subscriber usually holds a whole /64 and would
//! otherwise get 2^64 fresh addresses to spread connections over. Loopback
//! clients are exempt from the per-client limit by default (they still
//! count toward the total), as Postfix exempts `$mynetworks`: a local relay
//! or a load test on the same machine is not an abusive client.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};

use socket2::{Domain, Protocol, Socket, Type};

/// The listen backlog: connections the kernel queues before the loop accepts
/// them. Large, because a burst of connections (a mailing list run, a
/// benchmark) should queue, not be refused. Linux caps it at
/// `net.core.somaxconn`.
pub const BACKLOG: i32 = 1024;

/// How the loops of a [`ListenerSet`] share the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptMode {
    /// One socket per loop, bound with `SO_REUSEPORT`: the kernel balances
    /// ([`ListenerSet::bind_reuse_port`]).
    ReusePort,
    /// One socket; every loop holds a duplicate of its handle.
    Shared,
}

/// Listening sockets for the event loops of one address.
#[derive(Debug)]
pub struct ListenerSet {
    listeners: Vec<TcpListener>,
    mode: AcceptMode,
    local_addr: SocketAddr,
}

impl ListenerSet {
    /// Binds `addr` exclusively (see the module docs) and gives `count`
    /// loops (at least one) each a handle of the socket.
    ///
    /// Port 0 picks a free port. The error of a failed bind names the
    /// address: `cannot listen on 127.0.0.1:2525: Address already in use`.
    pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Self> {
        let first = listen_socket(addr, false).map_err(|e| naming(addr, e))?;
        Self::shared(first, count).map_err(|e| naming(addr, e))
    }

    /// Binds `count` sockets (at least one) on `addr` with `SO_REUSEPORT`,
    /// one per loop, so the kernel spreads connections over them. Any
    /// other socket of the same user that sets the option can join them
    /// and take a share of the connections (see the module docs); where
    /// the platform refuses the option, one socket is shared as by
    /// [`ListenerSet::bind`].
    pub fn bind_reuse_port(addr: SocketAddr, count: usize) -> io::Result<Self> {
        let count = count.max(1);
        let first = listen_socket(addr, true)
            .or_else(|_| listen_socket(addr, false))
            .map_err(|e| naming(addr, e))?;
        let local_addr = first.local_addr().map_err(|e| naming(addr, e))?;
        let mut others = Vec::with_capacity(count - 1);
        for _ in 1..count {
            match listen_socket(local_addr, true) {
                Ok(listener) => others.push(listener),
                Err(_) => {
                    // The platform refuses the option, or the first socket
                    // got the port without it: share the first socket.
                    return Self::shared(first, count).map_err(|e| naming(addr, e));
                }
            }
        }
        if count == 1 {
            return Self::shared(first, count).map_err(|e| naming(addr, e));
        }
        let mut listeners = Vec::with_capacity(count);
        listeners.push(first);
        listeners.append(&mut others);
        Ok(Self {
            listeners,
            mode: AcceptMode::ReusePort,
            local_addr,
        })
    }

    /// `count` handles of one bound socket.
    fn shared(first: TcpListener, count: usize) -> io::Result<Self> {
        let local_addr = first.local_addr()?;
        let mut listeners = Vec::with_capacity(count.max(1));
        for _ in 1..count.max(1) {
            listeners.push(first.try_clone()?);
        }
        listeners.insert(0, first);
        Ok(Self {
            listeners,
            mode: AcceptMode::Shared,
            local_addr,
        })
    }

    /// How the listeners share the address.
    pub fn mode(&self) -> AcceptMode {
        self.mode
    }

    /// The address actually bound (with the port chosen for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Number of listeners (one per loop).
    pub fn len(&self) -> usize {
        self.listeners.len()
    }

    /// Whether the set is empty (never, once bound).
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// The listeners as std sockets (non-blocking).
    pub fn into_std(self) -> Vec<TcpListener> {
        self.listeners
    }

    /// The listeners as mio sockets, ready to register with each loop's
    /// `Poll`.
    pub fn into_mio(self) -> Vec<mio::net::TcpListener> {
        self.listeners
            .into_iter()
            .map(mio::net::TcpListener::from_std)
            .collect()
    }
}

/// The same error, saying which address it is about.
fn naming(addr: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
}

/// A non-blocking listening socket on `addr`, with `SO_REUSEPORT` if asked.
fn listen_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this platform",
    ))
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// The server holds its maximum number of connections.
    #[error("too many connections ({limit})")]
    Total {
        /// The configured maximum.
        limit: usize,
    },
    /// This client (address or IPv6 network) holds its maximum.
    #[error("too many connections from {client} ({limit})")]
    PerClient {
        /// The client key: the address, or its IPv6 network.
        client: IpAddr,
        /// The configured maximum.
        limit: usize,
    },
}

/// Connection limits: [`ConnectionLimits::total`] across every loop and
/// [`ConnectionLimits::per_client`] per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Open connections in total. Default 10,000: at about 4 KiB per idle
    /// connection that is 40 MiB, and it stays below the usual 65,536
    /// open-file limit with room for the Maildir's files.
    pub total: usize,
    /// Open connections from one client. Default 50 (Postfix's
    /// `smtpd_client_connection_count_limit`): enough for a large sender's
    /// parallel deliveries, far too few for one host to take the server.
    pub per_client: usize,
    /// IPv6 addresses are counted per network of this many leading bits.
    /// Default 64 (see the module docs); 128 counts each address.
    pub ipv6_prefix: u8,
    /// Whether loopback clients (`127.0.0.0/8`, `::1`) are exempt from
    /// [`ConnectionLimits::per_client`]. Default `true` (see the module
    /// docs).
    pub exempt_loopback: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            total: 10_000,
            per_client: 50,
            ipv6_prefix: 64,
            exempt_loopback: true,
        }
    }
}

impl ConnectionLimits {
    /// Limits of `total` connections and `per_client` per client, counting
    /// IPv6 clients per /64.
    pub fn new(total: usize, per_client: usize) -> Self {
        Self {
            total,
            per_client,
            ..Self::default()
        }
    }
}

/// Counts open connections against [`ConnectionLimits`]; cheap to clone and
/// shared by every event loop.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limits: ConnectionLimits,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Only clients with at least one connection: the map never holds more
    /// entries than there are connections.
    per_client: HashMap<IpAddr, usize>,
}

impl ConnectionLimiter {
    /// A limiter with no connection counted.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            inner: Arc::new(Shared {
                limits,
                counts: Mutex::default(),
            }),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.inner.limits
    }

    /// Counts a new connection from `peer`, or says which limit it exceeds
    /// (nothing is counted then).
    pub fn try_acquire(&self, peer: IpAddr) -> Result<ConnectionGuard, LimitExceeded> {
        let limits = self.inner.limits;
        let client = client_key(peer, limits.ipv6_prefix);
        let mut counts = self.lock();
        if counts.total >= limits.total {
            return Err(LimitExceeded::Total {
                limit: limits.total,
            });
        }
        let from_client = counts.per_client.get(&client).copied().unwrap_or(0);
        let exempt = limits.exempt_loopback && client.is_loopback();
        if from_client >= limits.per_client && !exempt {
            return Err(LimitExceeded::PerClient {
                client,
                limit: limits.per_client,
            });
        }
        counts.total += 1;
        counts.per_client.insert(client, from_client + 1);
        Ok(ConnectionGuard {
            limiter: self.clone(),
            client,
        })
    }

    /// Open connections in total.
    pub fn total(&self) -> usize {
        self.lock().total
    }

    /// Open connections from `peer`'s client key.
    pub fn from_client(&self, peer: IpAddr) -> usize {
        let client = client_key(peer, self.inner.limits.ipv6_prefix);
        self.lock().per_client.get(&client).copied().unwrap_or(0)
    }

    fn release(&self, client: IpAddr) {
        let mut counts = self.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                counts.per_client.remove(&client);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counters are updated in single statements that cannot panic,
        // so a poisoned lock (a panic elsewhere while it was held) still
        // guards consistent counts.
        self.inner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
#[must_use = "dropping the guard releases the connection's slot at once"]
pub struct ConnectionGuard {
    limiter: ConnectionLimiter,
    client: IpAddr,
}

impl ConnectionGuard {
    /// The key this connection is counted under.
    pub fn client(&self) -> IpAddr {
        self.client
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.limiter.release(self.client);
    }
}

/// The address a client is counted under: IPv4 (also when it reaches a
/// dual-stack socket as an IPv4-mapped IPv6 address) as itself, IPv6
/// truncated to its first `prefix` bits.
fn client_key(peer: IpAddr, prefix: u8) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u32::from(prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpStream};
    use std::time::{Duration, Instant};

    fn loopback() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    #[test]
    fn binds_one_socket_shared_by_n_loops() {
        let set = ListenerSet::bind(loopback(), 3).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.mode(), AcceptMode::Shared);
        assert_ne!(set.local_addr().port(), 0);
        let addr = set.local_addr();
        for l in &set.into_std() {
            assert_eq!(l.local_addr().unwrap(), addr);
        }
    }

    #[test]
    fn reuse_port_binds_n_listeners_on_one_port() {
        let set = ListenerSet::bind_reuse_port(loopback(), 3).unwrap();
        assert_eq!(set.len(), 3);
        let addr = set.local_addr();
        let mode = set.mode();
        for l in &set.into_std() {
            assert_eq!(l.local_addr().unwrap(), addr);
        }
        if cfg!(target_os = "linux") {
            assert_eq!(mode, AcceptMode::ReusePort);
        }
    }

    /// A socket of the same user setting `SO_REUSEPORT`: what a second
    /// server would try.
    fn reuse_port_intruder(addr: SocketAddr) -> io::Result<TcpListener> {
        listen_socket(addr, true)
    }

    #[test]
    fn a_bound_address_keeps_everyone_else_out_and_the_error_names_it() {
        let set = ListenerSet::bind(loopback(), 2).unwrap();
        let addr = set.local_addr();
        for err in [
            ListenerSet::bind(addr, 2).unwrap_err(),
            ListenerSet::bind_reuse_port(addr, 2).unwrap_err(),
        ] {
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("cannot listen on {addr}: ")),
                "{err}"
            );
        }
        // Not even a socket that asks to share the port.
        assert!(reuse_port_intruder(addr).is_err());
        // Once the server is gone the address is free again.
        drop(set);
        ListenerSet::bind(addr, 1).unwrap();
    }

    #[test]
    fn a_reuse_port_group_admits_a_stranger_of_the_same_user() {
        // The documented risk of the opt-in.
        let set = ListenerSet::bind_reuse_port(loopback(), 2).unwrap();
        if set.mode() == AcceptMode::ReusePort {
            assert!(reuse_port_intruder(set.local_addr()).is_ok());
        }
    }

    /// Connections to the port are all accepted by one of the listeners:
    /// every listener is live, non-blocking, on the same port.
    #[test]
    fn every_connection_reaches_some_listener() {
        for reuse_port in [false, true] {
            let set = if reuse_port {
                ListenerSet::bind_reuse_port(loopback(), 4).unwrap()
            } else {
                ListenerSet::bind(loopback(), 4).unwrap()
            };
            accept_all(set);
        }
    }

    fn accept_all(set: ListenerSet) {
        let addr = set.local_addr();
        let listeners = set.into_std();
        let clients: Vec<TcpStream> = (0..32)
            .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap())
            .collect();
        let mut accepted = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while accepted < clients.len() {
            assert!(Instant::now() < deadline, "accepted only {accepted}");
            let mut progress = false;
            for l in &listeners {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.write_all(b"220 ok\r\n").unwrap();
                        accepted += 1;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("accept: {e}"),
                }
            }
            if !progress {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for mut c in clients {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 8];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"220 ok\r\n");
        }
    }

    #[test]
    fn port_held_by_another_program_fails_cleanly() {
        // Another socket holds the port: binding there must fail, whatever
        // the mode (we never steal a port).
        let holder = TcpListener::bind(loopback()).unwrap();
        let addr = holder.local_addr().unwrap();
        assert!(ListenerSet::bind(addr, 2).is_err());
        assert!(ListenerSet::bind_reuse_port(addr, 2).is_err());
    }

    #[test]
    fn single_listener_is_shared_mode() {
        let set = ListenerSet::bind(loopback(), 1).unwrap();
        assert_eq!(set.mode(), AcceptMode::Shared);
        assert_eq!(set.into_mio().len(), 1);
    }

    #[test]
    fn ipv6_loopback_when_available() {
        let addr: SocketAddr = "[::1]:0".parse().unwrap();
        match ListenerSet::bind(addr, 2) {
            Ok(set) => {
                assert!(ListenerSet::bind(set.local_addr(), 1).is_err());
                assert!(set.local_addr().is_ipv6());
                let c = TcpStream::connect_timeout(&set.local_addr(), Duration::from_secs(5));
                assert!(c.is_ok());
            }
            // No IPv6 on this machine (some containers): nothing to test.
            Err(e) => eprintln!("skipping: no IPv6 loopback: {e}"),
        }
    }

    #[test]
    fn loopback_is_exempt_from_the_per_client_limit_by_default() {
        let localhost = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let limiter = ConnectionLimiter::new(ConnectionLimits::new(3, 1));
        let guards: Vec<_> = (0..3)
            .map(|_| limiter.try_acquire(localhost).unwrap())
            .collect();
        assert_eq!(
            limiter.try_acquire(localhost).unwrap_err(),
            LimitExceeded::Total { limit: 3 }
        );
        drop(guards);
        let mut limits = ConnectionLimits::new(3, 1);
        limits.exempt_loopback = false;
        let strict = ConnectionLimiter::new(limits);
        let _g = strict.try_acquire(localhost).unwrap();
        assert!(matches!(
            strict.try_acquire(localhost),
            Err(LimitExceeded::PerClient { .. })
        ));
    }

    #[test]
    fn limiter_counts_total_and_per_client_and_releases_on_drop() {
        let limiter = ConnectionLimiter::new(ConnectionLimits::new(3, 2));
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let g1 = limiter.try_acquire(a).unwrap();
        let g2 = limiter.try_acquire(a).unwrap();
        assert_eq!(
            limiter.try_acquire(a).unwrap_err(),
            LimitExceeded::PerClient {
                client: a,
                limit: 2
            }
        );
        let g3 = limiter.try_acquire(b).unwrap();
        assert_eq!(
            limiter.try_acquire(b).unwrap_err(),
            LimitExceeded::Total { limit: 3 }
        );
        assert_eq!(limiter.total(), 3);
        drop(g1);
        assert_eq!(limiter.from_client(a), 1);
        let g4 = limiter.try_acquire(b).unwrap();
        drop((g2, g3, g4));
        assert_eq!(limiter.total(), 0);
        assert!(
            limiter.lock().per_client.is_empty(),
            "no entry outlives its connections"
        );
    }

    #[test]
    fn ipv6_clients_count_per_network_and_mapped_v4_as_v4() {
        let limiter = ConnectionLimiter::new(ConnectionLimits::new(100, 1));
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _gx = limiter.try_acquire(x).unwrap();
        assert_eq!(
            limiter.try_acquire(y).unwrap_err(),
            LimitExceeded::PerClient {
                client: "2001:db8:1:2::".parse().unwrap(),
                limit: 1
            }
        );
        let _gz = limiter.try_acquire(z).unwrap();
        let v4 = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 1).to_ipv6_mapped());
        let g = limiter.try_acquire(v4).unwrap();
        assert_eq!(g.client(), v4);
        assert!(limiter.try_acquire(mapped).is_err());
        assert_eq!(client_key(x, 128), x);
        assert_eq!(client_key(x, 0), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(client_key(x, 200), x);
    }

    #[test]
    fn limiter_is_consistent_under_threads() {
        let limiter = ConnectionLimiter::new(ConnectionLimits::new(1_000, 1_000));
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        let g = limiter.try_acquire(peer).unwrap();
                        drop(g);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(limiter.total(), 0);
        assert_eq!(limiter.from_client(peer), 0);
    }
}
