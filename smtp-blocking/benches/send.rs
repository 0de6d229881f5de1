//! `cargo bench -p smtp-blocking --bench send`: N small messages over one
//! reused connection to Postfix's `smtp-sink`, with this crate's
//! [`Connection`] and with lettre 0.11's blocking, pooled `SmtpTransport`
//! (`builder_dangerous`: plaintext, like ours here), alternating rounds in
//! the same run. Prints one line per round and then
//!
//! ```text
//! ratio send_reuse ours=<msgs/s> peer=<msgs/s> speedup=<ours/peer>
//! ```
//!
//! from the best round of each. `SEND_BENCH_N` (default 500) messages per
//! round, `SEND_BENCH_ROUNDS` (default 3) rounds each. Skips with a printed
//! reason when smtp-sink is not installed (`.ci/install-peers`).

use std::time::{Duration, Instant};

use lettre::Transport;
use smtp_blocking::{Connection, Envelope, ServerUrl, Settings};
use smtp_proto::address::{ForwardPath, Mailbox, ReversePath};
use smtp_tests::peers;

const BODY: &[u8] =
    b"From: <a@example.org>\r\nTo: <b@example.net>\r\nSubject: bench\r\n\r\nA small message.\r\n";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ours(url: &ServerUrl, n: usize) -> f64 {
    let mut settings = Settings::default().with_timeout(Duration::from_secs(30));
    settings.helo = Some("bench.example".parse().unwrap());
    let envelope = Envelope::new(
        ReversePath::Mailbox(Mailbox::parse("a@example.org").unwrap().into_owned()),
        vec![ForwardPath::Mailbox(
            Mailbox::parse("b@example.net").unwrap().into_owned(),
        )],
    );
    let mut conn = Connection::open(url, &settings).expect("connect to smtp-sink");
    // Warm up: the connection is set up before the clock starts, as
    // lettre's pool is warmed below.
    conn.send(&envelope, BODY).expect("warm-up message");
    let start = Instant::now();
    for _ in 0..n {
        let report = conn.send(&envelope, BODY).expect("send");
        assert!(report.all_accepted());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = conn.quit();
    rate
}

fn peer(port: u16, n: usize) -> f64 {
    let transport = lettre::SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let envelope = lettre::address::Envelope::new(
        Some("a@example.org".parse().unwrap()),
        vec!["b@example.net".parse().unwrap()],
    )
    .unwrap();
    transport.send_raw(&envelope, BODY).expect("lettre warm-up");
    let start = Instant::now();
    for _ in 0..n {
        transport.send_raw(&envelope, BODY).expect("lettre send");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(sink) = peers::smtp_sink() else {
        println!("send bench skipped: smtp-sink not found (run .ci/install-peers)");
        return;
    };
    let server = peers::start_smtp_sink(&sink).expect("start smtp-sink");
    let addr = server.addr();
    let url: ServerUrl = format!("smtp://{addr}?tls=off").parse().unwrap();
    let n = env_usize("SEND_BENCH_N", 500);
    let rounds = env_usize("SEND_BENCH_ROUNDS", 3);
    let (mut best_ours, mut best_peer) = (0.0f64, 0.0f64);
    for round in 0..rounds {
        let o = ours(&url, n);
        let p = peer(addr.port(), n);
        println!(
            "round {round}: ours={o:.0} msgs/s peer(lettre)={p:.0} msgs/s ({n} messages each)"
        );
        best_ours = best_ours.max(o);
        best_peer = best_peer.max(p);
    }
    println!(
        "ratio send_reuse ours={best_ours:.0} peer={best_peer:.0} speedup={:.2}",
        best_ours / best_peer
    );
}
