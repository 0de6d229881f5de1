//! What every loopback server of this crate needs: listeners on one port
//! across loopback addresses, an accept loop that stops without polling,
//! and connections that can be cut from outside.
//!
//! A server thread blocks in `accept` and in `read`, so that it reacts to a
//! client at once and burns no time in between. To stop it, its owner wakes
//! the accept (a connection to itself, seen after the stop flag is set) and
//! shuts down every open connection (a blocked read then returns end of
//! input). Nothing sleeps and nothing polls a flag on a timer.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How many ports [`same_port_listeners`] tries before it gives up.
const PORT_TRIES: usize = 50;

/// One TCP listener on each of `ips`, all on the same port (free on every
/// one of them): MX hosts reached through one configurable port, as a
/// transport's MX port setting expects. Linux routes all of 127.0.0.0/8 to
/// the loopback interface, so `127.0.0.N` needs no setup.
///
/// # Panics
///
/// When no port is free on every address after a few tries, or `ips` is
/// empty.
pub fn same_port_listeners(ips: &[IpAddr]) -> Vec<TcpListener> {
    let (first, rest) = ips.split_first().expect("at least one address");
    'port: for _ in 0..PORT_TRIES {
        let listener = TcpListener::bind((*first, 0)).expect("bind a loopback address");
        let port = listener.local_addr().expect("bound address").port();
        let mut listeners = vec![listener];
        for ip in rest {
            match TcpListener::bind((*ip, port)) {
                Ok(listener) => listeners.push(listener),
                Err(_) => continue 'port,
            }
        }
        return listeners;
    }
    panic!("no port free on every one of {ips:?}");
}

/// A UDP socket and a TCP listener on the same loopback port (a DNS
/// server).
pub(crate) fn udp_and_tcp() -> (UdpSocket, TcpListener) {
    for _ in 0..PORT_TRIES {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP on loopback");
        let port = udp.local_addr().expect("bound address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// A stream socket of either family.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Self::Tcp(s) => Self::Tcp(s.try_clone()?),
            Self::Unix(s) => Self::Unix(s.try_clone()?),
        })
    }

    fn shutdown(&self) {
        // Already closed by the peer: nothing left to cut.
        let _ = match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Both),
            Self::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// A listening socket whose blocking accept can be woken by its owner.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Waits for the next connection.
    pub(crate) fn accept(&self) -> io::Result<Socket> {
        match self {
            Self::Tcp(l) => l.accept().map(|(s, _)| Socket::Tcp(s)),
            Self::Unix(l, _) => l.accept().map(|(s, _)| Socket::Unix(s)),
        }
    }

    /// What wakes a thread blocked in [`accept`](Self::accept).
    pub(crate) fn waker(&self) -> io::Result<Waker> {
        Ok(match self {
            Self::Tcp(l) => Waker::Tcp(l.local_addr()?),
            Self::Unix(_, path) => Waker::Unix(path.clone()),
        })
    }
}

/// Wakes an accept loop by connecting to it.
#[derive(Debug, Clone)]
pub(crate) enum Waker {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Waker {
    /// Connects once; the accept loop sees the connection after its stop
    /// flag and ends. A loop that already ended refuses it, which is fine.
    pub(crate) fn wake(&self) {
        let _ = match self {
            Self::Tcp(addr) => TcpStream::connect_timeout(addr, Duration::from_secs(5)).map(drop),
            Self::Unix(path) => UnixStream::connect(path).map(drop),
        };
    }
}

/// A stop flag and the waker of the accept loop that checks it.
#[derive(Debug)]
pub(crate) struct Stop {
    flag: AtomicBool,
    waker: Waker,
}

impl Stop {
    pub(crate) fn new(waker: Waker) -> Arc<Self> {
        Arc::new(Self {
            flag: AtomicBool::new(false),
            waker,
        })
    }

    /// Whether the owner asked to stop.
    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sets the flag, then wakes the accept loop.
    pub(crate) fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// The open connections of a server, so that stopping it can cut them.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    /// Set by [`Connections::close_all`]: later registrations are cut at
    /// once (a connection accepted while the server stops).
    closed: bool,
    next: u64,
    open: BTreeMap<u64, Socket>,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `socket` (a duplicate of its descriptor is kept) until
    /// the returned guard is dropped, which the connection's thread does
    /// when it is done: the duplicate must not keep the socket open after
    /// the server closed it.
    pub(crate) fn register(self: &Arc<Self>, socket: &Socket) -> Registered {
        let mut registry = self.lock();
        let id = registry.next;
        registry.next += 1;
        if let Ok(copy) = socket.try_clone() {
            if registry.closed {
                copy.shutdown();
            } else {
                registry.open.insert(id, copy);
            }
        }
        Registered {
            connections: Arc::clone(self),
            id,
        }
    }

    /// Shuts every open connection down (reads in their threads return
    /// end of input, writes fail), and every one registered from now on.
    pub(crate) fn close_all(&self) {
        let mut registry = self.lock();
        registry.closed = true;
        for socket in registry.open.values() {
            socket.shutdown();
        }
    }
}

/// A connection's place in [`Connections`], given up when dropped.
#[derive(Debug)]
pub(crate) struct Registered {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

/// An accept loop on its own thread, one thread per connection, stopped
/// (every connection cut, every thread joined) when dropped.
///
/// A Unix listener's socket file belongs to the loop: it must stay until
/// the loop is dropped (the wake-up connects through it), and is removed
/// then.
#[derive(Debug)]
pub(crate) struct AcceptLoop {
    stop: Arc<Stop>,
    connections: Arc<Connections>,
    thread: Option<JoinHandle<()>>,
    unix_path: Option<PathBuf>,
}

impl AcceptLoop {
    /// Accepts on `listener` until stopped; `serve` runs on each
    /// connection in a thread of its own.
    pub(crate) fn spawn(
        listener: Listener,
        serve: impl Fn(Socket) + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let stop = Stop::new(listener.waker()?);
        let unix_path = match &listener {
            Listener::Unix(_, path) => Some(path.clone()),
            Listener::Tcp(_) => None,
        };
        let connections = Arc::new(Connections::default());
        let serve = Arc::new(serve);
        let thread = {
            let stop = Arc::clone(&stop);
            let connections = Arc::clone(&connections);
            thread::spawn(move || {
                let mut workers: Vec<JoinHandle<()>> = Vec::new();
                loop {
                    let socket = match listener.accept() {
                        Ok(socket) => socket,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                        // Out of descriptors or worse: stop accepting, so
                        // the test fails on what it does not get.
                        Err(_) => break,
                    };
                    if stop.is_set() {
                        break;
                    }
                    let registered = connections.register(&socket);
                    let serve = Arc::clone(&serve);
                    workers.retain(|w| !w.is_finished());
                    workers.push(thread::spawn(move || {
                        serve(socket);
                        drop(registered);
                    }));
                }
                drop(listener);
                for worker in workers {
                    let _ = worker.join();
                }
            })
        };
        Ok(Self {
            stop,
            connections,
            thread: Some(thread),
            unix_path,
        })
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.stop.set();
        self.connections.close_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}
