//! The channel over real loopback sockets: connect, deadlines, STARTTLS,
//! implicit TLS, certificate verification, Unix sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use smtp_blocking::{Channel, Error, Phase, TlsConfig, TlsError};
use smtp_tests::pki::{accept_tls, pki};
use smtp_tests::scripted::{read_until, send, serve_once};

const SHORT: Duration = Duration::from_millis(300);

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(5))
}

/// Reads until `needle` ends the received bytes, through the channel.
fn read_through(channel: &mut Channel, needle: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(needle) {
        let n = channel.read(&mut buf, soon()).unwrap();
        assert_ne!(n, 0, "EOF after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn ca_config(ca_pem: &str) -> TlsConfig {
    TlsConfig::builder()
        .ca_pem(ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

/// An address where nothing listens: bound, then closed.
fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A listener whose accept queue is full, so that a further connect gets
/// no answer and times out (Linux drops the SYN). The returned values must
/// stay alive for the duration of the test.
fn blackhole_addr() -> (socket2::Socket, TcpStream, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&bind.into()).unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Backlog 0 admits one queued connection; this one fills the queue.
    let filler = TcpStream::connect(addr).unwrap();
    (socket, filler, addr)
}

#[test]
fn connect_sets_nodelay_and_reads_plaintext() {
    let (addr, server) = serve_once(|mut s| {
        send(&mut s, b"220 hello\r\n")?;
        read_until(&mut s, b"\r\n")
    });
    let mut channel = Channel::connect(&[addr], SHORT).unwrap();
    assert!(!channel.is_tls());
    assert_eq!(channel.peer_addr(), Some(addr));
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 hello\r\n");
    channel.write_all(b"QUIT\r\n", soon()).unwrap();
    assert_eq!(server.join().unwrap().unwrap(), b"QUIT\r\n");
}

#[test]
fn connect_tries_the_next_address_after_refusal() {
    let (live, server) = serve_once(|mut s| send(&mut s, b"220 live\r\n"));
    let refused = refused_addr();
    let mut channel = Channel::connect(&[refused, live], SHORT).unwrap();
    assert_eq!(channel.peer_addr(), Some(live));
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 live\r\n");
    server.join().unwrap().unwrap();
}

#[test]
fn connect_times_out_and_tries_the_next_address() {
    let (_socket, _filler, dead) = blackhole_addr();
    let (live, server) = serve_once(|mut s| send(&mut s, b"220 live\r\n"));
    let start = Instant::now();
    let mut channel = Channel::connect(&[dead, live], SHORT).unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= SHORT,
        "the dead address was not waited for: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(channel.peer_addr(), Some(live));
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 live\r\n");
    server.join().unwrap().unwrap();
}

#[test]
fn connect_reports_the_last_failure() {
    let (_socket, _filler, dead) = blackhole_addr();
    let refused = refused_addr();
    let err = Channel::connect(&[dead, refused], SHORT).unwrap_err();
    match &err {
        Error::Connect { addr, source } => {
            assert_eq!(*addr, refused);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_temporary());
    assert!(matches!(
        Channel::connect(&[], SHORT),
        Err(Error::NoAddress(_))
    ));
}

#[test]
fn connect_host_uses_the_system_resolver() {
    let (addr, server) = serve_once(|mut s| send(&mut s, b"220 x\r\n"));
    let mut channel = Channel::connect_host("localhost", addr.port(), SHORT)
        .or_else(|_| Channel::connect_host("127.0.0.1", addr.port(), SHORT))
        .unwrap();
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 x\r\n");
    server.join().unwrap().unwrap();
}

#[test]
fn read_deadline_on_a_silent_server() {
    let (addr, server) = serve_once(|mut s| {
        // Say nothing until the client gives up and closes.
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf);
        Ok(())
    });
    let mut channel = Channel::connect(&[addr], SHORT).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let err = channel
        .read(&mut buf, Some(start + Duration::from_millis(200)))
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, Error::Timeout(Phase::Reading)), "{err:?}");
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // A deadline already past fails at once, without blocking.
    let err = channel.read(&mut buf, Some(Instant::now())).unwrap_err();
    assert!(matches!(err, Error::Timeout(Phase::Reading)), "{err:?}");
    drop(channel);
    server.join().unwrap().unwrap();
}

#[test]
fn read_returns_zero_at_end_of_stream() {
    let (addr, server) = serve_once(|mut s| send(&mut s, b"421 bye\r\n"));
    let mut channel = Channel::connect(&[addr], SHORT).unwrap();
    server.join().unwrap().unwrap();
    assert_eq!(read_through(&mut channel, b"\r\n"), b"421 bye\r\n");
    let mut buf = [0u8; 64];
    assert_eq!(channel.read(&mut buf, soon()).unwrap(), 0);
}

/// The STARTTLS dialogue of a test server: greeting, `STARTTLS`, `220`,
/// handshake, then one line each way over TLS.
#[test]
fn starttls_switches_to_tls() {
    let pki = pki();
    let config = pki.server_config.clone();
    let (addr, server) = serve_once(move |mut s| {
        send(&mut s, b"220 ready\r\n")?;
        assert_eq!(read_until(&mut s, b"\r\n")?, b"STARTTLS\r\n");
        send(&mut s, b"220 go ahead\r\n")?;
        let mut tls = accept_tls(s, &config)?;
        let line = read_until(&mut tls, b"\r\n")?;
        send(&mut tls, b"250 over tls\r\n")?;
        tls.conn.send_close_notify();
        tls.flush()?;
        Ok((line, tls.conn.server_name().map(str::to_owned)))
    });
    let mut channel = Channel::connect(&[addr], SHORT).unwrap();
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 ready\r\n");
    channel.write_all(b"STARTTLS\r\n", soon()).unwrap();
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 go ahead\r\n");
    let info = channel
        .start_tls(
            &ca_config(&pki.ca_pem),
            "localhost",
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
    assert!(channel.is_tls());
    assert_eq!(info.protocol.as_deref(), Some("TLSv1.3"));
    assert_eq!(info.server_name.as_deref(), Some("localhost"));
    assert!(
        info.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS13_")),
        "{info:?}"
    );
    assert_eq!(channel.tls_info(), Some(&info));
    channel.write_all(b"EHLO client\r\n", soon()).unwrap();
    assert_eq!(read_through(&mut channel, b"\r\n"), b"250 over tls\r\n");
    let mut buf = [0u8; 16];
    assert_eq!(
        channel.read(&mut buf, soon()).unwrap(),
        0,
        "close_notify is EOF"
    );
    let (line, sni) = server.join().unwrap().unwrap();
    assert_eq!(line, b"EHLO client\r\n");
    assert_eq!(sni.as_deref(), Some("localhost"), "SNI from the host name");
    // A second switch is refused.
    let err = channel
        .start_tls(&ca_config(&pki.ca_pem), "localhost", Instant::now() + SHORT)
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::Unavailable(_))),
        "{err:?}"
    );
}

/// STARTTLS response injection: an attacker appends a reply to the `220`.
/// The channel hands the injected bytes to the caller in the same read —
/// nothing is held back where the session could not see it.
#[test]
fn injected_bytes_after_the_220_reach_the_caller() {
    let (addr, server) = serve_once(|mut s| {
        assert_eq!(read_until(&mut s, b"\r\n")?, b"STARTTLS\r\n");
        // One segment, as an attacker would send it.
        send(
            &mut s,
            b"220 go ahead\r\n250-INJECTED\r\n250 AUTH PLAIN\r\n",
        )?;
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf);
        Ok(())
    });
    let mut channel = Channel::connect(&[addr], SHORT).unwrap();
    channel.write_all(b"STARTTLS\r\n", soon()).unwrap();
    let got = read_through(&mut channel, b"AUTH PLAIN\r\n");
    assert_eq!(got, b"220 go ahead\r\n250-INJECTED\r\n250 AUTH PLAIN\r\n");
    drop(channel);
    server.join().unwrap().unwrap();
}

/// If the caller reads only the `220` and switches, the injected plaintext
/// is still in the socket; rustls reads it as TLS records and the handshake
/// fails. Injected bytes can never pass for TLS data.
#[test]
fn injected_bytes_left_in_the_socket_fail_the_handshake() {
    let pki = pki();
    let (addr, server) = serve_once(|mut s| {
        assert_eq!(read_until(&mut s, b"\r\n")?, b"STARTTLS\r\n");
        send(&mut s, b"220 go ahead\r\n250 INJECTED\r\n")?;
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        Ok(())
    });
    let mut channel = Channel::connect(&[addr], SHORT).unwrap();
    channel.write_all(b"STARTTLS\r\n", soon()).unwrap();
    let mut reply = Vec::new();
    while reply.len() < b"220 go ahead\r\n".len() {
        let mut byte = [0u8; 1];
        assert_eq!(channel.read(&mut byte, soon()).unwrap(), 1);
        reply.push(byte[0]);
    }
    assert_eq!(reply, b"220 go ahead\r\n");
    let err = channel
        .start_tls(
            &ca_config(&pki.ca_pem),
            "localhost",
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Tls(TlsError::Handshake(_))), "{err:?}");
    assert!(!channel.is_tls());
    drop(channel);
    server.join().unwrap().unwrap();
}

#[test]
fn implicit_tls_greeting_and_large_write() {
    let pki = pki();
    let config = pki.server_config.clone();
    const BIG: usize = 1 << 20;
    let (addr, server) = serve_once(move |s| {
        let mut tls = accept_tls(s, &config)?;
        assert_eq!(tls.conn.server_name(), None, "no SNI for an IP address");
        send(&mut tls, b"220 implicit\r\n")?;
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while total < BIG {
            let n = tls.read(&mut buf)?;
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == b'x'));
            total += n;
        }
        send(&mut tls, format!("250 got {total}\r\n").as_bytes())?;
        Ok(total)
    });
    let mut channel = Channel::connect_tls(
        &[addr],
        "127.0.0.1",
        &ca_config(&pki.ca_pem),
        SHORT,
        Duration::from_secs(5),
    )
    .unwrap();
    let info = channel.tls_info().unwrap().clone();
    assert_eq!(info.server_name, None, "no SNI for an IP address");
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 implicit\r\n");
    channel.write_all(&vec![b'x'; BIG], soon()).unwrap();
    assert_eq!(
        read_through(&mut channel, b"\r\n"),
        format!("250 got {BIG}\r\n").as_bytes()
    );
    assert_eq!(server.join().unwrap().unwrap(), BIG);
    channel.close(soon()).unwrap();
}

/// Runs an implicit-TLS handshake against a fresh test server and returns
/// the client's result.
fn handshake_with(config: &TlsConfig, host: &str) -> Result<Channel, Error> {
    let server_config = pki().server_config;
    let (addr, server) = serve_once(move |s| accept_tls(s, &server_config).map(|_| ()));
    let result = Channel::connect_tls(&[addr], host, config, SHORT, Duration::from_secs(5));
    let _ = server.join().unwrap();
    result
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let other = pki();
    let err = handshake_with(&ca_config(&other.ca_pem), "localhost").unwrap_err();
    match &err {
        Error::Tls(tls) => assert!(tls.is_certificate_error(), "{tls:?}"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_permanent());
}

#[test]
fn the_webpki_roots_do_not_trust_a_test_ca() {
    let err = handshake_with(&TlsConfig::default(), "localhost").unwrap_err();
    assert!(
        matches!(&err, Error::Tls(tls) if tls.is_certificate_error()),
        "{err:?}"
    );
}

#[test]
fn the_right_ca_with_the_wrong_name_is_refused() {
    let pki = pki();
    let server_config = pki.server_config.clone();
    let (addr, server) = serve_once(move |s| accept_tls(s, &server_config).map(|_| ()));
    let err = Channel::connect_tls(
        &[addr],
        "mail.example.org",
        &ca_config(&pki.ca_pem),
        SHORT,
        Duration::from_secs(5),
    )
    .unwrap_err();
    let _ = server.join().unwrap();
    assert!(
        matches!(&err, Error::Tls(tls) if tls.is_certificate_error()),
        "{err:?}"
    );
}

#[test]
fn the_insecure_option_accepts_an_unknown_certificate() {
    let insecure = TlsConfig::builder()
        .dangerous_accept_any_certificate()
        .build()
        .unwrap();
    let channel = handshake_with(&insecure, "mail.example.org").unwrap();
    assert!(channel.is_tls());
}

#[test]
fn handshake_deadline_on_a_silent_server() {
    let (addr, server) = serve_once(|mut s| {
        let mut buf = [0u8; 4096];
        // Read the ClientHello, answer nothing, wait for the client to leave.
        while s.read(&mut buf)? > 0 {}
        Ok(())
    });
    let start = Instant::now();
    let err = Channel::connect_tls(
        &[addr],
        "localhost",
        &TlsConfig::default(),
        SHORT,
        Duration::from_millis(250),
    )
    .unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, Error::Timeout(Phase::TlsHandshake)),
        "{err:?}"
    );
    assert!(elapsed >= Duration::from_millis(240), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(err.is_temporary());
    server.join().unwrap().unwrap();
}

#[test]
fn a_server_that_closes_during_the_handshake_is_an_error() {
    let (addr, server) = serve_once(|mut s| {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf)?;
        Ok(())
    });
    let err = Channel::connect_tls(
        &[addr],
        "localhost",
        &TlsConfig::default(),
        SHORT,
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    server.join().unwrap().unwrap();
}

#[cfg(unix)]
#[test]
fn unix_socket_plaintext_only() {
    use std::os::unix::net::UnixListener;
    let dir = std::env::temp_dir().join(format!("smtp-blocking-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lmtp.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"220 lmtp\r\n").unwrap();
        read_until(&mut s, b"\r\n").unwrap()
    });
    let mut channel = Channel::connect_unix(&path).unwrap();
    assert_eq!(channel.peer_addr(), None);
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 lmtp\r\n");
    let err = channel
        .start_tls(&TlsConfig::default(), "localhost", Instant::now() + SHORT)
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls(TlsError::Unavailable(_))),
        "{err:?}"
    );
    channel.write_all(b"LHLO x\r\n", soon()).unwrap();
    assert_eq!(server.join().unwrap(), b"LHLO x\r\n");
    channel.close(soon()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn open_an_smtps_url() {
    let pki = pki();
    let config = pki.server_config.clone();
    let (addr, server) = serve_once(move |s| {
        let mut tls = accept_tls(s, &config)?;
        send(&mut tls, b"220 smtps\r\n")
    });
    let url: smtp_blocking::ServerUrl = format!("smtps://127.0.0.1:{}", addr.port())
        .parse()
        .unwrap();
    let mut channel =
        Channel::open(&url, &ca_config(&pki.ca_pem), SHORT, Duration::from_secs(5)).unwrap();
    assert!(channel.is_tls());
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 smtps\r\n");
    server.join().unwrap().unwrap();
}

#[test]
fn open_a_plain_smtp_url_does_not_start_tls() {
    let (addr, server) = serve_once(|mut s| send(&mut s, b"220 plain\r\n"));
    let url: smtp_blocking::ServerUrl = format!("smtp://127.0.0.1:{}?tls=required", addr.port())
        .parse()
        .unwrap();
    let mut channel = Channel::open(&url, &TlsConfig::default(), SHORT, SHORT).unwrap();
    assert!(!channel.is_tls(), "STARTTLS is the session's call");
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 plain\r\n");
    server.join().unwrap().unwrap();
}

#[cfg(unix)]
#[test]
fn open_an_lmtp_unix_url() {
    use std::os::unix::net::UnixListener;
    let dir = std::env::temp_dir().join(format!("smtp-blocking-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lmtp.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"220 lmtp\r\n").unwrap();
    });
    let url: smtp_blocking::ServerUrl = format!("lmtp://{}", path.display()).parse().unwrap();
    let mut channel = Channel::open(&url, &TlsConfig::default(), SHORT, SHORT).unwrap();
    assert_eq!(read_through(&mut channel, b"\r\n"), b"220 lmtp\r\n");
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_download_in_small_reads_and_unclean_close_is_eof() {
    let pki = pki();
    let config = pki.server_config.clone();
    const BIG: usize = 300_000;
    let (addr, server) = serve_once(move |s| {
        let mut tls = accept_tls(s, &config)?;
        // Many records of odd sizes, then a TCP close without close_notify.
        let data: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        for chunk in data.chunks(7_777) {
            tls.write_all(chunk)?;
        }
        tls.flush()?;
        tls.sock.shutdown(std::net::Shutdown::Both)
    });
    let mut channel = Channel::connect_tls(
        &[addr],
        "localhost",
        &ca_config(&pki.ca_pem),
        SHORT,
        Duration::from_secs(5),
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = channel.read(&mut buf, soon()).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), BIG);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    server.join().unwrap().unwrap();
}
