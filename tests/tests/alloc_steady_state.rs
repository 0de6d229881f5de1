//! Heap allocations in the steady state of a session, counted by a global
//! allocator: after a warm-up, a server reading pipelined transactions
//! (MAIL with parameters, RCPT, DATA, a dot-stuffed body, RSET) allocates
//! nothing per command, and a client allocates nothing per reply it reads
//! nor per command it enqueues (each is encoded straight into the session's
//! reused queue buffer) and body it writes.
//!
//! Each side runs `N` and then `10 * N` transactions after the warm-up; the
//! allocation count must not grow with the number of transactions (it is
//! zero today; buffers that grow to their working size do so during the
//! warm-up).

use std::alloc::System;
use std::time::Instant;

use smtp_proto::Output;
use smtp_proto::address::{Domain, ForwardPath, Host, Mailbox, ReversePath};
use smtp_proto::client::{self, Client};
use smtp_proto::command::{Body, Command, MailParameters, RcptParameters};
use smtp_proto::server::{self, Server};
use smtp_tests::serve;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// The system allocator, counting every allocation and reallocation.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations (including reallocations) made while `f` runs. The counter
/// is global, so this binary has a single test; even so the test harness's
/// main thread allocates (its table of running tests) while the test thread
/// starts, so each measurement is taken with [`fewest`].
fn counted(f: impl FnOnce()) -> u64 {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    (change.allocations + change.reallocations) as u64
}

/// The smallest of three measurements of `f` (each count on its own): an
/// allocation made by another thread shows in one of them at most, while
/// one made per transaction shows in all three.
fn fewest(mut f: impl FnMut() -> (u64, u64)) -> (u64, u64) {
    let (a, b, c) = (f(), f(), f());
    (a.0.min(b.0).min(c.0), a.1.min(b.1).min(c.1))
}

// ------------------------------------------------------------------ server

/// One pipelined transaction as a client writes it: typical parameters, a
/// body with a stuffed dot, and RSET.
const TRANSACTION: &[u8] = b"MAIL FROM:<alice@example.org> SIZE=1000 BODY=8BITMIME\r\n\
RCPT TO:<bob@example.net>\r\n\
RCPT TO:<carol@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;carol@example.net\r\n\
DATA\r\n\
Subject: steady state\r\n\
\r\n\
Hello,\r\n\
..a line that starts with a dot\r\n\
bye\r\n\
.\r\n\
RSET\r\n";

fn feed_server(server: &mut Server, now: Instant, mut bytes: &[u8]) {
    // Bounded: a server that stops taking input fails the test instead of
    // hanging it.
    for _ in 0..100 {
        let n = server.handle_input(now, bytes);
        bytes = &bytes[n..];
        serve::accept_all(server, now);
        if bytes.is_empty() {
            return;
        }
    }
    panic!(
        "the server stopped taking input: {:?}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn steady_state_allocates_nothing_per_command_or_reply() {
    server_allocates_nothing_per_command();
    client_allocates_nothing_per_reply();
}

fn server_allocates_nothing_per_command() {
    let now = Instant::now();
    let mut config = server::Config::new(Domain::new("mx.example.org").unwrap().into_owned());
    // NOTIFY and ORCPT are DSN parameters (RFC 3461).
    config.offer.dsn = true;
    // The whole transaction, RSET included, arrives in one read: pipelined
    // behind DATA's end, which the synchronization rule (on by default)
    // would refuse. This test measures allocations, not that rule.
    config.forbid_unauth_pipelining = false;
    let mut server = Server::new(config, now);
    serve::accept_all(&mut server, now);
    feed_server(&mut server, now, b"EHLO client.example.org\r\n");
    let run = |server: &mut Server, n: usize| {
        for _ in 0..n {
            feed_server(server, now, TRANSACTION);
        }
    };
    // Warm-up: buffers grow to their working size.
    run(&mut server, 10);
    let (few, many) = fewest(|| {
        (
            counted(|| run(&mut server, 100)),
            counted(|| run(&mut server, 1000)),
        )
    });
    println!("server: {few} allocations in 100 transactions, {many} in 1000");
    assert_eq!(
        (few, many),
        (0, 0),
        "allocations per pipelined MAIL/RCPT/DATA/body/RSET"
    );
    assert!(!server.is_closed());
}

// ------------------------------------------------------------------ client

const GREETING: &[u8] = b"220 mx.example.net ESMTP\r\n";
const EHLO: &[u8] = b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n";
/// The server's answers to one transaction: MAIL, two RCPTs and DATA
/// (pipelined), the end of data, and RSET.
const ENVELOPE_REPLIES: &[u8] = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n";
const QUEUED: &[u8] = b"250 2.0.0 Ok: queued as 4Z1b2c3d4e\r\n";
const RSET_OK: &[u8] = b"250 2.0.0 Ok\r\n";

/// Drains the client: writes every transmit, drops events; returns how
/// many replies it reported.
fn drain_client(client: &mut Client, now: Instant) -> usize {
    let mut replies = 0;
    for _ in 0..10_000 {
        match client.poll(now) {
            Output::Transmit(bytes) => {
                let n = bytes.len();
                client.advance_transmit(now, n).unwrap();
            }
            Output::Event(client::Event::Reply { .. }) => replies += 1,
            Output::Event(client::Event::Error(e)) => panic!("client error: {e}"),
            Output::Event(_) => {}
            Output::Wait { .. } => return replies,
            _ => panic!("unexpected output"),
        }
    }
    panic!("the client never waited");
}

/// One transaction through the client; returns the allocations made while
/// it read the replies.
fn transaction(
    client: &mut Client,
    now: Instant,
    from: &ReversePath<'static>,
    to: &[ForwardPath<'static>],
) -> u64 {
    client
        .enqueue(Command::Mail {
            from: from.clone(),
            params: MailParameters {
                size: Some(1000),
                body: Some(Body::EightBitMime),
                ..Default::default()
            },
        })
        .unwrap();
    for to in to {
        client
            .enqueue(Command::Rcpt {
                to: to.clone(),
                params: RcptParameters::default(),
            })
            .unwrap();
    }
    client.start_body().unwrap();
    drain_client(client, now);
    let mut reading = counted(|| {
        assert_eq!(
            client.handle_input(now, ENVELOPE_REPLIES),
            ENVELOPE_REPLIES.len()
        );
        assert_eq!(drain_client(client, now), 4);
    });
    client
        .write_body(b"Subject: steady state\r\n\r\n.hello\r\n")
        .unwrap();
    client.finish_body().unwrap();
    drain_client(client, now);
    reading += counted(|| {
        assert_eq!(client.handle_input(now, QUEUED), QUEUED.len());
        assert_eq!(drain_client(client, now), 1);
    });
    client.enqueue(Command::Rset).unwrap();
    drain_client(client, now);
    reading += counted(|| {
        assert_eq!(client.handle_input(now, RSET_OK), RSET_OK.len());
        assert_eq!(drain_client(client, now), 1);
    });
    reading
}

fn client_allocates_nothing_per_reply() {
    let now = Instant::now();
    let mut config = client::Config::new(Host::parse("client.example.org").unwrap().into_owned());
    config.tls = smtp_proto::TlsMode::Disabled;
    let mut client = Client::new(config, now);
    drain_client(&mut client, now);
    assert_eq!(client.handle_input(now, GREETING), GREETING.len());
    drain_client(&mut client, now);
    assert_eq!(client.handle_input(now, EHLO), EHLO.len());
    drain_client(&mut client, now);
    assert!(client.is_ready());

    let from = ReversePath::Mailbox(Mailbox::parse("alice@example.org").unwrap());
    let to = [
        ForwardPath::Mailbox(Mailbox::parse("bob@example.net").unwrap()),
        ForwardPath::Mailbox(Mailbox::parse("carol@example.net").unwrap()),
    ];
    let run = |client: &mut Client, n: usize| {
        (0..n)
            .map(|_| transaction(client, now, &from, &to))
            .sum::<u64>()
    };
    // Warm-up: buffers grow to their working size.
    run(&mut client, 10);
    let (few, all_few) = fewest(|| {
        let mut reading = 0;
        let all = counted(|| reading = run(&mut client, 100));
        (reading, all)
    });
    let (many, all_many) = fewest(|| {
        let mut reading = 0;
        let all = counted(|| reading = run(&mut client, 1000));
        (reading, all)
    });
    println!(
        "client: {few} allocations reading 600 replies, {many} reading 6000; \
         whole transactions (commands built and enqueued, body written): \
         {all_few} in 100, {all_many} in 1000"
    );
    assert_eq!((few, many), (0, 0), "allocations per reply");
    assert_eq!(
        (all_few, all_many),
        (0, 0),
        "allocations per command enqueued, body written or reply read"
    );
    assert!(client.is_ready());
}
