//! The PROXY protocol on the mio server's listeners: v1 (TCP4, TCP6,
//! UNKNOWN) and v2 (TCP4, TCP6, LOCAL) headers from a trusted source name
//! the client for `Received:` and the per-client limits; malformed headers
//! and untrusted sources are closed without a greeting; implicit TLS
//! starts right after the header.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rustls::StreamOwned;
use smtp_mio::server::listener::ConnectionLimits;
use smtp_mio::server::store::Credentials;
use smtp_proto::proxy::{Cidr, V2_SIGNATURE};
use smtp_tests::line_client::LineClient;

mod common;
use common::{TIMEOUT, TestServer, start_store, tls_client};

fn loopback_trusted() -> Vec<Cidr> {
    vec!["127.0.0.1/32".parse().unwrap(), "::1".parse().unwrap()]
}

fn proxied_server() -> TestServer {
    start_store(Credentials::new(), |o| {
        o.proxy_protocol = loopback_trusted();
        o.proxy_timeout = Duration::from_secs(2);
    })
}

fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(command);
    h.push(family);
    h.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    h.extend_from_slice(block);
    h
}

fn v2_tcp4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut block = Vec::new();
    block.extend_from_slice(&src);
    block.extend_from_slice(&dst);
    block.extend_from_slice(&40000u16.to_be_bytes());
    block.extend_from_slice(&25u16.to_be_bytes());
    // A TLV the server skips (PP2_TYPE_NOOP).
    block.extend_from_slice(&[0x04, 0, 2, 0, 0]);
    v2(0x21, 0x11, &block)
}

fn v2_tcp6(src: &str, dst: &str) -> Vec<u8> {
    let src: std::net::Ipv6Addr = src.parse().unwrap();
    let dst: std::net::Ipv6Addr = dst.parse().unwrap();
    let mut block = Vec::new();
    block.extend_from_slice(&src.octets());
    block.extend_from_slice(&dst.octets());
    block.extend_from_slice(&40000u16.to_be_bytes());
    block.extend_from_slice(&25u16.to_be_bytes());
    v2(0x21, 0x21, &block)
}

/// A connection that sent `header`.
fn open(addr: SocketAddr, header: &[u8]) -> LineClient {
    let mut c = LineClient::connect(addr, TIMEOUT);
    c.write(header);
    c
}

/// Delivers one message; returns its queue id.
fn deliver(mut c: LineClient) -> String {
    assert!(c.last_line().starts_with("220 "));
    assert!(c.cmd_last("EHLO client.test").starts_with("250 "));
    assert!(c.cmd_last("MAIL FROM:<a@example.org>").starts_with("250 "));
    assert!(c.cmd_last("RCPT TO:<b@example.net>").starts_with("250 "));
    assert!(c.cmd_last("DATA").starts_with("354 "));
    let done = c.cmd_last("Subject: proxied\r\n\r\nhello\r\n.");
    assert!(done.starts_with("250 2.0.0 Ok: queued as "), "{done}");
    assert!(c.cmd_last("QUIT").starts_with("221 "));
    done.rsplit(' ').next().unwrap().to_owned()
}

/// Whether the server closes without sending a byte.
fn closed_silently(mut c: LineClient) -> bool {
    let mut buf = [0u8; 64];
    match c.stream().read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        // A reset is a close too.
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// The `Received:` line of stored message `id`.
fn received(server: &TestServer, id: &str) -> String {
    let stored = std::fs::read(server.maildir().join("new").join(id)).unwrap();
    let text = String::from_utf8(stored).unwrap();
    text.lines().next().unwrap().to_owned()
}

#[test]
fn v1_headers_name_the_client() {
    let server = proxied_server();
    let id = deliver(open(
        server.addr,
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\n",
    ));
    assert_eq!(
        received(&server, &id),
        "Received: from client.test ([192.0.2.1])"
    );
    let id = deliver(open(
        server.addr,
        b"PROXY TCP6 2001:db8::7 2001:db8::25 56324 25\r\n",
    ));
    assert_eq!(
        received(&server, &id),
        "Received: from client.test ([IPv6:2001:db8::7])"
    );
    // UNKNOWN: the real endpoints.
    let id = deliver(open(server.addr, b"PROXY UNKNOWN\r\n"));
    assert_eq!(
        received(&server, &id),
        "Received: from client.test ([127.0.0.1])"
    );
}

#[test]
fn v2_headers_name_the_client() {
    let server = proxied_server();
    let id = deliver(open(
        server.addr,
        &v2_tcp4([203, 0, 113, 9], [198, 51, 100, 7]),
    ));
    assert_eq!(
        received(&server, &id),
        "Received: from client.test ([203.0.113.9])"
    );
    let id = deliver(open(server.addr, &v2_tcp6("2001:db8::9", "2001:db8::25")));
    assert_eq!(
        received(&server, &id),
        "Received: from client.test ([IPv6:2001:db8::9])"
    );
    // LOCAL (a health check): the real endpoints.
    let id = deliver(open(server.addr, &v2(0x20, 0x00, &[])));
    assert_eq!(
        received(&server, &id),
        "Received: from client.test ([127.0.0.1])"
    );
}

#[test]
fn a_header_in_pieces_is_read_when_whole() {
    let server = proxied_server();
    let header = v2_tcp4([203, 0, 113, 10], [198, 51, 100, 7]);
    let mut c = open(server.addr, &[]);
    // Two segments (no Nagle), unless the network merges them.
    c.stream().set_nodelay(true).unwrap();
    c.write(&header[..7]);
    c.write(&header[7..]);
    let id = deliver(c);
    assert_eq!(
        received(&server, &id),
        "Received: from client.test ([203.0.113.10])"
    );
}

#[test]
fn malformed_missing_or_late_headers_get_no_greeting() {
    let server = proxied_server();
    for bad in [
        &b"PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n"[..],
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\n",
        b"EHLO client.test\r\n",
        &v2(0x22, 0x11, &[0; 12]),
        &v2(0x21, 0x11, &[0; 4]),
    ] {
        assert!(
            closed_silently(open(server.addr, bad)),
            "{}",
            bad.escape_ascii()
        );
    }
    // Nothing at all: closed after the PROXY timeout (2 s here).
    assert!(closed_silently(open(server.addr, b"")));
    assert!(server.files("new").is_empty());
}

#[test]
fn an_untrusted_source_gets_no_greeting() {
    let server = start_store(Credentials::new(), |o| {
        o.proxy_protocol = vec!["192.0.2.0/24".parse().unwrap()];
    });
    assert!(closed_silently(open(
        server.addr,
        b"PROXY TCP4 192.0.2.1 198.51.100.7 1 25\r\n"
    )));
}

#[test]
fn per_client_limits_count_the_client_the_header_names() {
    let server = start_store(Credentials::new(), |o| {
        o.proxy_protocol = loopback_trusted();
        o.limits = ConnectionLimits::new(100, 1);
    });
    let a = b"PROXY TCP4 192.0.2.1 198.51.100.7 1000 25\r\n";
    let mut first = open(server.addr, a);
    assert!(first.last_line().starts_with("220 "));
    // The same client again: over its limit of one.
    let mut second = open(server.addr, a);
    assert!(second.last_line().starts_with("421 4.7.0 "));
    // Another client through the same proxy is served.
    let mut other = open(
        server.addr,
        b"PROXY TCP4 192.0.2.2 198.51.100.7 1000 25\r\n",
    );
    assert!(other.last_line().starts_with("220 "));
    assert!(first.cmd_last("QUIT").starts_with("221 "));
    assert!(other.cmd_last("QUIT").starts_with("221 "));
}

#[test]
fn implicit_tls_starts_after_the_header() {
    let server = start_store(Credentials::new(), |o| {
        o.proxy_protocol = loopback_trusted();
        o.tls_listen = vec!["127.0.0.1:0".parse().unwrap()];
    });
    let addr = server.tls_addr.expect("an implicit-TLS listener");
    for header in [
        b"PROXY TCP4 192.0.2.44 198.51.100.7 1000 465\r\n".to_vec(),
        v2_tcp4([192, 0, 2, 45], [198, 51, 100, 7]),
    ] {
        let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        tcp.write_all(&header).unwrap();
        let mut tls = StreamOwned::new(tls_client(&server.identity), tcp);
        let mut replies = Vec::new();
        let mut buf = [0u8; 1024];
        while !replies.ends_with(b"\r\n") {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "closed before the greeting");
            replies.extend_from_slice(&buf[..n]);
        }
        assert!(replies.starts_with(b"220 mx.test ESMTP"));
        tls.write_all(b"QUIT\r\n").unwrap();
    }
}
