//! Binding and starting: a [`Server`] binds every listener and prepares
//! its loops; [`Server::spawn`] runs each loop on a thread of its own and
//! gives back the [`Running`] server.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Poll, Waker};
use smtp_proto::TlsMode;

use super::backend::Backend;
use super::event_loop::{EventLoop, LoopSetup, MAX_LISTENERS, WAKER};
use super::listener::{ConnectionLimiter, ListenerSet};
use super::options::{ListenerKind, Options, Shared};
use super::shutdown::ShutdownHandle;

/// A bound server, ready to run.
pub struct Server<B: Backend> {
    shared: Arc<Shared>,
    backend: Arc<B>,
    loops: Vec<LoopSetup>,
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
}

impl<B: Backend> std::fmt::Debug for Server<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addrs", &self.addrs)
            .field("tls_addrs", &self.tls_addrs)
            .field("loops", &self.loops.len())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Server<B> {
    /// Binds every listener (so address errors show before any thread
    /// starts) and prepares the loops.
    pub fn bind(options: Options, backend: B) -> io::Result<Self> {
        let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned());
        if options.tls.is_none() {
            if !options.tls_listen.is_empty() {
                return Err(invalid("implicit-TLS listeners need a TLS configuration"));
            }
            if options.session.tls != TlsMode::Disabled {
                return Err(invalid("STARTTLS needs a TLS configuration"));
            }
        }
        if options.listen.is_empty() && options.tls_listen.is_empty() {
            return Err(invalid("no listen address"));
        }
        if options.listen.len() + options.tls_listen.len() > MAX_LISTENERS {
            return Err(invalid("too many listen addresses"));
        }
        let threads = options.threads.max(1);
        let mut loops = Vec::with_capacity(threads);
        for _ in 0..threads {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            loops.push(LoopSetup {
                poll,
                waker,
                listeners: Vec::new(),
            });
        }
        let mut addrs = Vec::new();
        let mut tls_addrs = Vec::new();
        let plain = options.listen.iter().map(|a| (a, ListenerKind::Plain));
        let tls = options
            .tls_listen
            .iter()
            .map(|a| (a, ListenerKind::ImplicitTls));
        for (addr, kind) in plain.chain(tls) {
            let set = ListenerSet::bind(*addr, threads)?;
            match kind {
                ListenerKind::Plain => addrs.push(set.local_addr()),
                ListenerKind::ImplicitTls => tls_addrs.push(set.local_addr()),
            }
            for (setup, listener) in loops.iter_mut().zip(set.into_mio()) {
                setup.listeners.push((listener, kind));
            }
        }
        Ok(Self {
            shared: Arc::new(Shared::new(options)),
            backend: Arc::new(backend),
            loops,
            addrs,
            tls_addrs,
        })
    }

    /// The plaintext listeners' addresses (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The implicit-TLS listeners' addresses.
    pub fn tls_local_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The connection counters (for monitoring).
    pub fn limiter(&self) -> &ConnectionLimiter {
        &self.shared.limiter
    }

    /// A handle that stops the server gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(
            Arc::clone(&self.shared),
            self.loops.iter().map(|l| Arc::clone(&l.waker)).collect(),
        )
    }

    /// Starts one thread per loop.
    pub fn spawn(self) -> io::Result<Running> {
        let handle = self.shutdown_handle();
        let mut threads = Vec::with_capacity(self.loops.len());
        for (index, setup) in self.loops.into_iter().enumerate() {
            let shared = Arc::clone(&self.shared);
            let backend = Arc::clone(&self.backend);
            let thread = std::thread::Builder::new()
                .name(format!("smtp-loop-{index}"))
                .spawn(move || EventLoop::new(index, setup, shared, backend)?.run())?;
            threads.push(thread);
        }
        Ok(Running { handle, threads })
    }

    /// Runs the server until it is shut down.
    pub fn run(self) -> io::Result<()> {
        self.spawn()?.join()
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    handle: ShutdownHandle,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// A handle that stops the server gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Waits for every loop to finish (after a shutdown); the first loop
    /// error, if any.
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("event loop panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }

    /// Shuts the server down and waits for it.
    pub fn shutdown(self) -> io::Result<()> {
        self.handle.shutdown();
        self.join()
    }
}
