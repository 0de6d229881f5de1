//! A scripted SMTP server on a loopback address, one thread per connection,
//! for the delivery engine's tests: it behaves well, or badly in one chosen
//! way, and counts what it saw. Every socket has a read timeout and the
//! accept loop stops when the server is dropped, so no test can hang on it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How the server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// A well-behaved ESMTP server with PIPELINING.
    Accept,
    /// Accepts the TCP connection and never says anything.
    Silent,
    /// `421` as its greeting.
    Greeting421,
    /// Closes the connection after reading the DATA command's content start
    /// (mid-transaction, before the final reply).
    CloseMidData,
    /// Refuses every recipient with `550 5.1.1`.
    RejectRecipients,
    /// Refuses every recipient with `451 4.3.0`.
    DeferRecipients,
    /// Refuses recipients whose address contains "grey" with `451 4.7.1`
    /// (greylisting), accepts the others.
    Greylist,
    /// Takes one message, then closes without a word when the next
    /// command arrives (an idle timeout racing the client's next MAIL).
    OneMessagePerConnection,
    /// Well-behaved until QUIT, which it never answers (nor closes).
    MuteAtQuit,
    /// Answers each line at random from the seed: proper replies mostly,
    /// else wrong codes, garbage, bare LF, mixed multi-line codes,
    /// unsolicited replies, a stall, or a close.
    Chaos(u64),
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicUsize,
    pub(crate) open: AtomicUsize,
    pub(crate) max_open: AtomicUsize,
    pub(crate) messages: AtomicUsize,
    pub(crate) rsets: AtomicUsize,
    pub(crate) quits: AtomicUsize,
    /// Positive final replies sent after a complete message (Chaos).
    pub(crate) positive_finals: AtomicUsize,
    pub(crate) recipients: Mutex<Vec<String>>,
}

/// The running server.
pub(crate) struct FakeSmtp {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub(crate) counters: Arc<Counters>,
}

impl FakeSmtp {
    /// Starts on `ip` at `port` (0: any free port).
    pub(crate) fn start(ip: &str, port: u16, behaviour: Behaviour) -> Self {
        let ip: IpAddr = ip.parse().unwrap();
        let listener = TcpListener::bind((ip, port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let thread = {
            let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
            thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let counters = Arc::clone(&counters);
                            let stop = Arc::clone(&stop);
                            workers.push(thread::spawn(move || {
                                serve(stream, behaviour, &counters, &stop);
                            }));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Self {
            addr,
            stop,
            thread: Some(thread),
            counters,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    pub(crate) fn max_open(&self) -> usize {
        self.counters.max_open.load(Ordering::SeqCst)
    }

    pub(crate) fn open(&self) -> usize {
        self.counters.open.load(Ordering::SeqCst)
    }

    pub(crate) fn messages(&self) -> usize {
        self.counters.messages.load(Ordering::SeqCst)
    }

    pub(crate) fn rsets(&self) -> usize {
        self.counters.rsets.load(Ordering::SeqCst)
    }

    pub(crate) fn quits(&self) -> usize {
        self.counters.quits.load(Ordering::SeqCst)
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, behaviour: Behaviour, counters: &Counters, stop: &AtomicBool) {
    counters.connections.fetch_add(1, Ordering::SeqCst);
    let open = counters.open.fetch_add(1, Ordering::SeqCst) + 1;
    counters.max_open.fetch_max(open, Ordering::SeqCst);
    let _ = match behaviour {
        Behaviour::Chaos(seed) => {
            let n = counters.connections.load(Ordering::SeqCst) as u64;
            chaos(
                stream,
                seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                counters,
            )
        }
        _ => session(stream, behaviour, counters, stop),
    };
    counters.open.fetch_sub(1, Ordering::SeqCst);
}

fn session(
    stream: TcpStream,
    behaviour: Behaviour,
    counters: &Counters,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    match behaviour {
        Behaviour::Silent => {
            // Hold the connection, say nothing, until the peer leaves.
            let mut line = String::new();
            while !stop.load(Ordering::SeqCst) {
                match input.read_line(&mut line) {
                    Ok(0) => return Ok(()),
                    _ => line.clear(),
                }
            }
            return Ok(());
        }
        Behaviour::Greeting421 => {
            out.write_all(b"421 4.3.2 mx busy, try another\r\n")?;
            return Ok(());
        }
        _ => out.write_all(b"220 fake.test ESMTP\r\n")?,
    }
    let mut idle_reads = 0;
    let mut delivered_here = false;
    loop {
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => idle_reads = 0,
            Err(_) => {
                // Read timeout: keep waiting (bounded) unless stopped.
                idle_reads += 1;
                if stop.load(Ordering::SeqCst) || idle_reads > 100 {
                    return Ok(());
                }
                continue;
            }
        }
        let upper = line.to_ascii_uppercase();
        if behaviour == Behaviour::OneMessagePerConnection
            && counters.messages.load(Ordering::SeqCst) > 0
            && delivered_here
            && !upper.starts_with("QUIT")
        {
            return Ok(());
        }
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("MAIL") {
            b"250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT") {
            counters
                .recipients
                .lock()
                .unwrap()
                .push(line.trim_end().to_owned());
            match behaviour {
                Behaviour::RejectRecipients => b"550 5.1.1 no such user\r\n",
                Behaviour::DeferRecipients => b"451 4.3.0 try later\r\n",
                Behaviour::Greylist if upper.contains("GREY") => b"451 4.7.1 greylisted\r\n",
                _ => b"250 2.1.5 ok\r\n",
            }
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut body = String::new();
            loop {
                let mut l = String::new();
                match input.read_line(&mut l) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(_) => {
                        idle_reads += 1;
                        if stop.load(Ordering::SeqCst) || idle_reads > 100 {
                            return Ok(());
                        }
                        continue;
                    }
                }
                if behaviour == Behaviour::CloseMidData {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                body.push_str(&l);
            }
            counters.messages.fetch_add(1, Ordering::SeqCst);
            delivered_here = true;
            b"250 2.0.0 queued\r\n"
        } else if upper.starts_with("RSET") {
            counters.rsets.fetch_add(1, Ordering::SeqCst);
            b"250 2.0.0 ok\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 2.0.0 ok\r\n"
        } else if upper.starts_with("QUIT") && behaviour == Behaviour::MuteAtQuit {
            counters.quits.fetch_add(1, Ordering::SeqCst);
            continue;
        } else if upper.starts_with("QUIT") {
            counters.quits.fetch_add(1, Ordering::SeqCst);
            out.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else {
            b"500 5.5.2 what?\r\n"
        };
        out.write_all(reply)?;
    }
}

/// xorshift64*: a small deterministic generator for the chaos server.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn chaos(stream: TcpStream, seed: u64, counters: &Counters) -> std::io::Result<()> {
    // Odd multiplier, odd offset: distinct seeds give distinct, non-zero
    // states.
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let greeting: &[u8] = match rng.below(10) {
        0 => b"421 busy\r\n",
        1 => b"2x0 what\r\n",
        _ => b"220 chaos.test ESMTP\r\n",
    };
    out.write_all(greeting)?;
    loop {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let proper: &[u8] = if upper.starts_with("EHLO") {
            b"250-chaos.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("DATA") {
            b"354 go\r\n"
        } else if upper.starts_with("QUIT") {
            b"221 bye\r\n"
        } else {
            b"250 ok\r\n"
        };
        match rng.below(64) {
            0 => return Ok(()),
            1 => thread::sleep(Duration::from_millis(1200)),
            2 => out.write_all(b"550 5.0.0 no\r\n")?,
            3 => out.write_all(b"451 4.0.0 later\r\n")?,
            4 => out.write_all(b"\x00\xff garbage \x1b[0m\r\n")?,
            5 => out.write_all(b"250 bare\n")?,
            6 => out.write_all(b"250-one\r\n550 two\r\n")?,
            7 => {
                out.write_all(proper)?;
                out.write_all(b"250 unsolicited\r\n")?;
            }
            _ => out.write_all(proper)?,
        }
        if upper.starts_with("DATA") {
            // Read the content to its end, then a final reply at random.
            let mut last = Vec::new();
            loop {
                last.clear();
                if input.read_until(b'\n', &mut last)? == 0 {
                    return Ok(());
                }
                if last == b".\r\n" {
                    break;
                }
            }
            match rng.below(8) {
                0 => return Ok(()),
                1 => out.write_all(b"451 4.3.0 lost it\r\n")?,
                2 => out.write_all(b"554 5.6.0 no thanks\r\n")?,
                _ => {
                    counters.positive_finals.fetch_add(1, Ordering::SeqCst);
                    out.write_all(b"250 2.0.0 queued\r\n")?;
                }
            }
        }
        if upper.starts_with("QUIT") {
            return Ok(());
        }
    }
}
