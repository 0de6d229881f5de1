//! Per-client rates on a virtual clock: fixed windows per client, IPv6 by
//! /64, exemptions, bounded memory, and the replies.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use smtp_proto::server::{ClientRates, RateKind, RateLimits};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limits() -> RateLimits {
    let mut l = RateLimits::default();
    l.connections = Some(3);
    l.messages = Some(2);
    l.recipients = Some(5);
    l
}

#[test]
fn each_rate_counts_per_client_and_window() {
    let mut r = ClientRates::new(limits());
    let t0 = Instant::now();
    let a = ip("192.0.2.1");
    for _ in 0..3 {
        assert!(r.connect(t0, a).is_ok());
    }
    let over = r.connect(t0, a).unwrap_err();
    assert_eq!(over.what, RateKind::Connections);
    // Other rates and other clients have their own counts.
    assert!(r.message(t0, a).is_ok());
    assert!(r.connect(t0, ip("192.0.2.2")).is_ok());
    for _ in 0..5 {
        assert!(r.recipient(t0, a).is_ok());
    }
    assert_eq!(r.recipient(t0, a).unwrap_err().what, RateKind::Recipients);
    // Still inside the window a second before its end; a fresh one after.
    assert!(r.connect(t0 + Duration::from_secs(59), a).is_err());
    assert!(r.connect(t0 + Duration::from_secs(60), a).is_ok());
    assert!(r.message(t0 + Duration::from_secs(60), a).is_ok());
}

#[test]
fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
    let mut r = ClientRates::new(limits());
    let t = Instant::now();
    assert!(r.message(t, ip("2001:db8:1:2::1")).is_ok());
    assert!(r.message(t, ip("2001:db8:1:2:ffff::9")).is_ok());
    let over = r.message(t, ip("2001:db8:1:2::77")).unwrap_err();
    assert_eq!(over.client, ip("2001:db8:1:2::"));
    assert!(r.message(t, ip("2001:db8:1:3::1")).is_ok(), "another /64");
    assert!(r.message(t, ip("192.0.2.9")).is_ok());
    assert!(r.message(t, ip("::ffff:192.0.2.9")).is_ok());
    assert!(
        r.message(t, ip("192.0.2.9")).is_err(),
        "the mapped address is the same client"
    );
}

#[test]
fn loopback_and_exempt_networks_are_not_counted() {
    let mut l = limits();
    l.exempt = vec!["198.51.100.0/24".parse().unwrap()];
    let mut r = ClientRates::new(l.clone());
    let t = Instant::now();
    for _ in 0..100 {
        assert!(r.connect(t, ip("127.0.0.1")).is_ok());
        assert!(r.connect(t, ip("::1")).is_ok());
        assert!(r.connect(t, ip("198.51.100.20")).is_ok());
    }
    assert_eq!(r.tracked(), 0);
    l.count_loopback = true;
    let mut r = ClientRates::new(l);
    for _ in 0..3 {
        assert!(r.connect(t, ip("127.0.0.1")).is_ok());
    }
    assert!(r.connect(t, ip("127.0.0.1")).is_err());
}

#[test]
fn unlimited_rates_count_nothing() {
    let mut r = ClientRates::new(RateLimits::default());
    let t = Instant::now();
    for _ in 0..1000 {
        assert!(r.connect(t, ip("192.0.2.1")).is_ok());
    }
    assert_eq!(r.tracked(), 0);
}

#[test]
fn memory_is_bounded_under_a_flood_of_sources() {
    let mut l = limits();
    l.max_clients = 100;
    let mut r = ClientRates::new(l);
    let t = Instant::now();
    for i in 0..10_000u32 {
        let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        assert!(
            r.connect(t + Duration::from_millis(u64::from(i)), addr)
                .is_ok()
        );
        assert!(r.tracked() <= 100);
    }
    // The newest clients are still counted; the oldest were forgotten.
    let last = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + 9_999));
    let now = t + Duration::from_millis(10_000);
    assert!(r.connect(now, last).is_ok());
    assert!(r.connect(now, last).is_ok());
    assert!(r.connect(now, last).is_err());
    // Once every window has passed, the table empties as it is used.
    let later = now + Duration::from_secs(61);
    assert!(r.connect(later, ip("192.0.2.1")).is_ok());
    assert_eq!(r.tracked(), 1);
}

#[test]
fn replies_say_which_rate_with_postfix_texts() {
    let mut r = ClientRates::new(limits());
    let t = Instant::now();
    let a = ip("192.0.2.1");
    for _ in 0..3 {
        let _ = r.connect(t, a);
        let _ = r.message(t, a);
    }
    for _ in 0..6 {
        let _ = r.recipient(t, a);
    }
    let text = |e: smtp_proto::server::RateExceeded| {
        let mut out = Vec::new();
        e.reply("mx.example.org").encode(&mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        text(r.connect(t, a).unwrap_err()),
        "421 4.7.0 mx.example.org Error: too many connections from 192.0.2.1\r\n"
    );
    assert_eq!(
        text(r.message(t, a).unwrap_err()),
        "450 4.7.1 Error: too much mail from 192.0.2.1\r\n"
    );
    assert_eq!(
        text(r.recipient(t, a).unwrap_err()),
        "450 4.7.1 Error: too many recipients from 192.0.2.1\r\n"
    );
}
