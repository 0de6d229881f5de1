//! Transcript tests for the server session: a small `C:`/`S:` format and a
//! runner that replays each transcript whole, byte by byte, and split at
//! every index, demanding the same result every time.
//!
//! # Format
//!
//! One step per line; `#` starts a comment line, blank lines are ignored.
//!
//! | line | meaning |
//! |---|---|
//! | `C: text` | the client sends `text` and CRLF |
//! | `B: bytes` | the client sends raw bytes, no CRLF added; escapes `\r \n \t \0 \\ \xHH` |
//! | `C*N: text` | the client sends the line N times |
//! | `S: text` | the server must have sent this line (CRLF implied) next |
//! | `S*N: text` | … N times |
//! | `E: event` | the application must have seen this event next (see below) |
//! | `A: answer` | the application answers: `accept`, `reply <code> [text]`, `challenge <text>`, `success`, `shutdown` |
//! | `U: answer` | the same answer must be refused with a `UsageError` |
//! | `T: +<secs>` | the virtual clock advances; `handle_timeout` is called |
//! | `X: eof` / `X: tls` / `X: closed` / `X: open` | `handle_eof`; `handle_tls_established`; the session must be closed / open |
//! | `H: EHLO name [+KEYWORD [params]…]` | shorthand: the client sends `EHLO name` (or `LHLO`); the server must answer with its hostname, `SIZE 10240000` (or the `!max-size` value), the [`DEFAULT_EXTENSIONS`] and then each `+` keyword with its parameters, one `250` line each; the application must see the `helo` event. `H: HELO name`: the reply is the hostname alone |
//!
//! Consecutive `C:`/`B:` lines form one client write. Directives before the
//! first step configure the server: `!lmtp`, `!tls` (implicit TLS: the
//! transcript starts with `E: starttls`, `X: tls`, `E: tls-established`),
//! `!starttls [discard] [required]` (STARTTLS offered, optional or
//! required), `!auth MECH…`, `!auth-plaintext`,
//! `!require-auth`, `!max-size N|none`, `!offer +dsn -pipelining …`,
//! `!bare-line-ending normalize|accept`, `!errors SOFT HARD DELAY_MS`,
//! `!hostname NAME`, `!greeting CODE TEXT`, `!sync` (protocol
//! synchronization enforced; off otherwise, see [`Transcript::parse`]), `!no-split` (the transcript
//! depends on how the input is cut, e.g. STARTTLS injection).
//!
//! Events are written as: `helo ehlo client.example`, `mail FROM:<a@b>
//! SIZE=10`, `rcpt TO:<c@d>`, `data-start data|bdat`, `body <escaped>`
//! (consecutive pieces joined), `message-end size=N replies=M`, `reset
//! rset|helo|too-big|bare-line-ending|chunk-refused`, `auth MECH
//! [ir=<escaped>]`, `auth-response <escaped>`, `auth-plain
//! [authzid=X] authcid=Y password=Z`, `auth-login user=X password=Y`, `vrfy
//! X`, `expn X`, `tls-established`, `starttls` (the `StartTls` output),
//! `closed quit|eof|timeout|…`.
//!
//! At the end of a transcript every byte the server sent and every event
//! must have been matched.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use smtp_proto::address::Domain;
use smtp_proto::command::Command;
use smtp_proto::data::BareLineEnding;
use smtp_proto::keyword::Mechanism;
use smtp_proto::reply::Reply;
use smtp_proto::server::{CloseReason, Config, Event, HeloKind, ResetReason, Server};
use smtp_proto::{BodyMode, InjectionPolicy, Output, Protocol, TlsInfo, TlsMode};

/// The extensions a server with the default configuration announces after
/// `SIZE`, in the order of its EHLO reply: what an `H:` line expects before
/// its own keywords. Written out, not read from the configuration, so that
/// a change of the defaults shows in the transcripts.
pub const DEFAULT_EXTENSIONS: [&str; 5] = [
    "PIPELINING",
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "CHUNKING",
    "SMTPUTF8",
];

/// A parsed transcript.
#[derive(Debug, Clone)]
pub struct Transcript {
    config: Config,
    /// The SIZE line `H:` expects: the default maximum, or `!max-size`'s.
    size_line: String,
    split: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Client(Vec<u8>),
    Server(String),
    Event(String),
    Answer(String),
    Misuse(String),
    Advance(Duration),
    Eof,
    Tls,
    Closed(bool),
}

/// How the client bytes are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Each client write in one piece.
    Whole,
    /// One byte at a time.
    Bytes,
    /// The concatenation of all client bytes cut once at this index.
    At(usize),
}

/// Decodes `\r \n \t \0 \\ \xHH` escapes.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).expect("\\x needs two hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("bad \\x escape"));
                i += 2;
            }
            other => panic!("unknown escape {other:?}"),
        }
        i += 2;
    }
    out
}

/// Shows bytes with Rust-style escapes.
pub fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

impl Transcript {
    /// Parses a transcript (panics on a malformed one: it is test code).
    pub fn parse(text: &str) -> Self {
        let mut config = Config::new(Domain::new("mx.example.org").expect("valid").into_owned());
        config.errors.delay = Duration::ZERO;
        // A transcript is replayed cut at every index, which pipelines
        // every client line behind the previous one: the synchronization
        // rule would see each cut differently. Transcripts that test the
        // rule turn it on with `!sync` (and `!no-split`).
        config.forbid_unauth_pipelining = false;
        let mut t = Self {
            config,
            size_line: "SIZE 10240000".to_owned(),
            split: true,
            steps: Vec::new(),
        };
        for raw in text.lines() {
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(d) = line.strip_prefix('!') {
                t.directive(d.trim());
                continue;
            }
            let (tag, rest) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad line {raw:?}"));
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            if tag == "H" {
                t.hello(rest);
                continue;
            }
            let (tag, times) = match tag.split_once('*') {
                Some((tag, n)) => (tag, n.parse::<usize>().expect("repeat count")),
                None => (tag, 1),
            };
            for _ in 0..times {
                let step = match tag {
                    "C" => {
                        let mut b = rest.as_bytes().to_vec();
                        b.extend_from_slice(b"\r\n");
                        Step::Client(b)
                    }
                    "B" => Step::Client(unescape(rest)),
                    "S" => Step::Server(rest.to_owned()),
                    "E" => Step::Event(rest.to_owned()),
                    "A" => Step::Answer(rest.to_owned()),
                    "U" => Step::Misuse(rest.to_owned()),
                    "T" => {
                        let secs = rest.trim_start_matches('+').trim();
                        Step::Advance(Duration::from_secs_f64(secs.parse().expect("seconds")))
                    }
                    "X" => match rest.trim() {
                        "eof" => Step::Eof,
                        "tls" => Step::Tls,
                        "closed" => Step::Closed(true),
                        "open" => Step::Closed(false),
                        other => panic!("unknown X: {other}"),
                    },
                    other => panic!("unknown tag {other:?} in {raw:?}"),
                };
                t.push(step);
            }
        }
        t
    }

    /// Adds a step; consecutive client lines form one write.
    fn push(&mut self, step: Step) {
        match (step, self.steps.last_mut()) {
            (Step::Client(b), Some(Step::Client(prev))) => prev.extend_from_slice(&b),
            (step, _) => self.steps.push(step),
        }
    }

    /// Expands `H: EHLO name [+KEYWORD…]` and `H: HELO name` (see the
    /// module docs).
    fn hello(&mut self, line: &str) {
        let (hello, extra) = line.split_once('+').unwrap_or((line, ""));
        let mut words = hello.split_whitespace();
        let (Some(verb), Some(name), None) = (words.next(), words.next(), words.next()) else {
            panic!("H: is `VERB name [+KEYWORD…]`: {line:?}");
        };
        // Each keyword runs to the next `+`, with its parameters.
        let extra = extra.split('+').map(str::trim).filter(|k| !k.is_empty());
        let mut lines = vec![self.config.hostname.to_string()];
        // HELO gets the hostname alone (RFC 5321 §4.1.1.1): no extensions.
        if verb.eq_ignore_ascii_case("HELO") {
            assert!(extra.count() == 0, "H: HELO takes no +keywords: {line:?}");
        } else {
            lines.push(self.size_line.clone());
            lines.extend(DEFAULT_EXTENSIONS.iter().map(|k| (*k).to_owned()));
            lines.extend(extra.map(str::to_owned));
        }
        self.push(Step::Client(format!("{verb} {name}\r\n").into_bytes()));
        let last = lines.len() - 1;
        for (i, text) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.push(Step::Server(format!("250{sep}{text}")));
        }
        self.push(Step::Event(format!(
            "helo {} {name}",
            verb.to_ascii_lowercase()
        )));
    }

    fn directive(&mut self, d: &str) {
        let mut words = d.split_whitespace();
        let name = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        let c = &mut self.config;
        match name {
            "lmtp" => c.protocol = Protocol::Lmtp,
            "tls" => c.tls = TlsMode::Implicit,
            "no-split" => self.split = false,
            "starttls" => {
                c.on_injection = if args.contains(&"discard") {
                    InjectionPolicy::Discard
                } else {
                    InjectionPolicy::Close
                };
                c.tls = if args.contains(&"required") {
                    TlsMode::Required
                } else {
                    TlsMode::Opportunistic
                };
            }
            "auth" => {
                c.auth.mechanisms = args
                    .iter()
                    .map(|m| Mechanism::new_owned((*m).to_owned()).expect("mechanism"))
                    .collect();
            }
            "auth-plaintext" => c.auth.require_tls = false,
            "sync" => c.forbid_unauth_pipelining = true,
            "require-auth" => c.auth.required_for_mail = true,
            "max-size" => {
                c.max_message_size = match args.first() {
                    Some(&"none") => None,
                    Some(n) => Some(n.parse().expect("size")),
                    None => panic!("max-size needs a value"),
                };
                self.size_line = match c.max_message_size {
                    Some(n) => format!("SIZE {n}"),
                    None => "SIZE".to_owned(),
                };
            }
            "offer" => {
                for a in args {
                    let (on, what) = a.split_at(1);
                    let on = on == "+";
                    let o = &mut c.offer;
                    match what {
                        "pipelining" => o.pipelining = on,
                        "8bitmime" => o.eight_bit_mime = on,
                        "smtputf8" => o.smtputf8 = on,
                        "enhanced" => o.enhanced_status_codes = on,
                        "chunking" => o.chunking = on,
                        "binarymime" => o.binarymime = on,
                        "dsn" => o.dsn = on,
                        "requiretls" => o.requiretls = on,
                        other => panic!("unknown extension {other}"),
                    }
                }
            }
            "bare-line-ending" => {
                c.bare_line_ending = match args.first() {
                    Some(&"normalize") => BareLineEnding::Normalize,
                    Some(&"accept") => BareLineEnding::Accept,
                    _ => BareLineEnding::Reject,
                }
            }
            "errors" => {
                let n = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
                c.errors.soft = n(0).expect("soft") as u32;
                c.errors.hard = n(1).expect("hard") as u32;
                c.errors.delay = Duration::from_millis(n(2).unwrap_or(0));
            }
            "hostname" => {
                c.hostname = Domain::new(args.first().expect("name"))
                    .expect("valid hostname")
                    .into_owned();
            }
            "greeting" => {
                let text = format!("{}\r\n", args.join(" "));
                let (reply, _) = Reply::parse(text.as_bytes())
                    .expect("greeting parses")
                    .expect("complete greeting");
                c.greeting = Some(reply.into_owned());
            }
            other => panic!("unknown directive !{other}"),
        }
    }

    /// The configuration the transcript runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// All client bytes, concatenated.
    pub fn client_bytes(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Client(b) => b.len(),
                _ => 0,
            })
            .sum()
    }

    /// Runs the transcript once with the given cut; `Err` says what differed.
    pub fn run_with(&self, cut: Cut) -> Result<Record, String> {
        let mut r = Runner::new(self);
        let mut offset = 0;
        for (i, step) in self.steps.iter().enumerate() {
            let at = |what: &str| format!("step {} ({what}), cut {cut:?}", i + 1);
            match step {
                Step::Client(bytes) => {
                    let pieces: Vec<&[u8]> = match cut {
                        Cut::Whole => vec![bytes],
                        Cut::Bytes => bytes.chunks(1).collect(),
                        Cut::At(k) if k > offset && k < offset + bytes.len() => {
                            let (a, b) = bytes.split_at(k - offset);
                            vec![a, b]
                        }
                        Cut::At(_) => vec![bytes],
                    };
                    offset += bytes.len();
                    for piece in pieces {
                        r.backlog.extend_from_slice(piece);
                        r.feed();
                    }
                }
                Step::Server(line) => {
                    let want = format!("{line}\r\n");
                    let got = r.wire.get(r.read..).unwrap_or_default();
                    if !got.starts_with(want.as_bytes()) {
                        return Err(format!(
                            "{}: expected server line {line:?}, server sent {:?}",
                            at("S"),
                            escape(got)
                        ));
                    }
                    r.read += want.len();
                }
                Step::Event(want) => match r.next_event() {
                    Some(got) if got == *want => {}
                    got => {
                        return Err(format!(
                            "{}: expected event {want:?}, got {got:?} (then {:?})",
                            at("E"),
                            r.events
                        ));
                    }
                },
                Step::Answer(a) => {
                    r.answer(a)
                        .map_err(|e| format!("{}: answer {a:?} refused: {e}", at("A")))?;
                    r.feed();
                }
                Step::Misuse(a) => {
                    if r.answer(a).is_ok() {
                        return Err(format!(
                            "{}: answer {a:?} should have been refused",
                            at("U")
                        ));
                    }
                    r.pump();
                }
                Step::Advance(d) => {
                    r.now += *d;
                    r.server.handle_timeout(r.now);
                    r.feed();
                }
                Step::Eof => {
                    r.feed();
                    r.server.handle_eof(r.now);
                    r.pump();
                }
                Step::Tls => {
                    r.server
                        .handle_tls_established(r.now, TlsInfo::default())
                        .map_err(|e| format!("{}: {e}", at("X: tls")))?;
                    r.feed();
                }
                Step::Closed(closed) => {
                    if r.server.is_closed() != *closed {
                        return Err(format!("{}: is_closed() is {}", at("X"), !closed));
                    }
                }
            }
        }
        r.feed();
        if r.read != r.wire.len() {
            return Err(format!(
                "unmatched server output at the end: {:?}",
                escape(r.wire.get(r.read..).unwrap_or_default())
            ));
        }
        if !r.events.is_empty() {
            return Err(format!("unmatched events at the end: {:?}", r.events));
        }
        Ok(Record {
            wire: r.wire,
            events: r.all_events,
            closed: r.server.is_closed(),
        })
    }

    /// Runs whole, byte by byte and cut at every index (unless `!no-split`);
    /// every run must pass and all must record the same session.
    pub fn check(&self) -> Result<(), String> {
        let reference = self.run_with(Cut::Whole)?;
        if !self.split {
            return Ok(());
        }
        let mut cuts = vec![Cut::Bytes];
        cuts.extend((1..self.client_bytes()).map(Cut::At));
        for cut in cuts {
            let record = self.run_with(cut)?;
            if record != reference {
                return Err(format!(
                    "cut {cut:?} recorded a different session:\n{record:#?}\nvs whole:\n{reference:#?}"
                ));
            }
        }
        Ok(())
    }
}

/// Parses and checks a transcript, panicking with the difference.
pub fn run(text: &str) {
    if let Err(e) = Transcript::parse(text).check() {
        panic!("transcript failed: {e}\n--- transcript ---\n{text}");
    }
}

/// What one run of a transcript saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Every byte the server transmitted.
    pub wire: Vec<u8>,
    /// Every event, rendered (body pieces joined).
    pub events: Vec<String>,
    /// Whether the session ended closed.
    pub closed: bool,
}

struct Runner {
    server: Server,
    now: Instant,
    wire: Vec<u8>,
    read: usize,
    events: VecDeque<String>,
    all_events: Vec<String>,
    backlog: Vec<u8>,
    /// Whether the last event was a body piece (to join the next).
    in_body: bool,
}

impl Runner {
    fn new(t: &Transcript) -> Self {
        let now = Instant::now();
        let server = Server::new(t.config.clone(), now);
        let mut r = Self {
            server,
            now,
            wire: Vec::new(),
            read: 0,
            events: VecDeque::new(),
            all_events: Vec::new(),
            backlog: Vec::new(),
            in_body: false,
        };
        r.pump();
        r
    }

    /// The oldest unmatched event; a later body piece starts a new event.
    fn next_event(&mut self) -> Option<String> {
        if self.events.len() <= 1 {
            self.in_body = false;
        }
        self.events.pop_front()
    }

    /// Offers the backlog, polling between pieces, until the server takes
    /// no more.
    fn feed(&mut self) {
        loop {
            self.pump();
            if self.backlog.is_empty() {
                return;
            }
            let n = self.server.handle_input(self.now, &self.backlog);
            if n == 0 {
                return;
            }
            self.backlog.drain(..n);
        }
    }

    /// Polls until the server waits.
    fn pump(&mut self) {
        for _ in 0..1_000_000 {
            match self.server.poll(self.now) {
                Output::Transmit(bytes) => {
                    let n = bytes.len();
                    self.wire.extend_from_slice(bytes);
                    self.server.advance_transmit(self.now, n).expect("advance");
                }
                Output::Event(event) => {
                    let body = matches!(event, Event::Body(_));
                    let text = render(&event);
                    if body && self.in_body {
                        let piece = text.strip_prefix("body ").unwrap_or_default();
                        if let Some(last) = self.events.back_mut() {
                            last.push_str(piece);
                        }
                        if let Some(last) = self.all_events.last_mut() {
                            last.push_str(piece);
                        }
                    } else {
                        self.events.push_back(text.clone());
                        self.all_events.push(text);
                    }
                    self.in_body = body;
                }
                Output::StartTls => {
                    self.in_body = false;
                    self.events.push_back("starttls".into());
                    self.all_events.push("starttls".into());
                }
                Output::Wait { deadline } => match deadline {
                    Some(d) if d <= self.now => self.server.handle_timeout(self.now),
                    _ => return,
                },
                _ => return,
            }
        }
        panic!("the server never waited");
    }

    fn answer(&mut self, a: &str) -> Result<(), String> {
        self.in_body = false;
        let (verb, rest) = a.split_once(' ').unwrap_or((a, ""));
        let result = match verb {
            "accept" => self.server.accept(),
            "success" => self.server.auth_success(),
            "shutdown" => self.server.shutdown(),
            "challenge" => self.server.auth_challenge(&unescape(rest)),
            "reply" => {
                let text = format!("{}\r\n", rest.replace('|', "\r\n"));
                let (reply, _) = Reply::parse(text.as_bytes())
                    .map_err(|e| format!("bad reply {rest:?}: {e}"))?
                    .ok_or("incomplete reply")?;
                self.server.reply(reply)
            }
            other => return Err(format!("unknown answer {other}")),
        };
        result.map_err(|e| e.to_string())
    }
}

/// Renders an event in the transcript's event syntax.
pub fn render(event: &Event<'_>) -> String {
    let mut s = String::new();
    match event {
        Event::Helo { kind, host } => {
            let kind = match kind {
                HeloKind::Helo => "helo",
                HeloKind::Ehlo => "ehlo",
                HeloKind::Lhlo => "lhlo",
                _ => "other",
            };
            let _ = write!(s, "helo {kind} {host}");
        }
        Event::Mail { from, params } => {
            let cmd = Command::Mail {
                from: from.clone(),
                params: params.clone(),
            };
            let _ = write!(s, "mail {}", wire_args(&cmd));
        }
        Event::Rcpt { to, params } => {
            let cmd = Command::Rcpt {
                to: to.clone(),
                params: params.clone(),
            };
            let _ = write!(s, "rcpt {}", wire_args(&cmd));
        }
        Event::DataStart { mode, .. } => {
            s.push_str(match mode {
                BodyMode::Data => "data-start data",
                BodyMode::Bdat => "data-start bdat",
                _ => "data-start other",
            });
        }
        Event::Body(bytes) => {
            let _ = write!(s, "body {}", escape(bytes));
        }
        Event::MessageEnd { size, replies, .. } => {
            let _ = write!(s, "message-end size={size} replies={replies}");
        }
        Event::Reset { reason, .. } => {
            s.push_str(match reason {
                ResetReason::Rset => "reset rset",
                ResetReason::Helo => "reset helo",
                ResetReason::MessageTooBig => "reset too-big",
                ResetReason::BareLineEnding => "reset bare-line-ending",
                ResetReason::Nul => "reset nul",
                ResetReason::ChunkRefused => "reset chunk-refused",
                _ => "reset other",
            });
        }
        Event::Auth {
            mechanism,
            initial_response,
        } => {
            let _ = write!(s, "auth {mechanism}");
            if let Some(ir) = initial_response {
                let _ = write!(s, " ir={}", escape(ir.decode().expose()));
            }
        }
        Event::AuthResponse(data) => {
            let _ = write!(s, "auth-response {}", escape(data.expose()));
        }
        Event::AuthPlain {
            authzid,
            authcid,
            password,
        } => {
            s.push_str("auth-plain");
            if let Some(z) = authzid {
                let _ = write!(s, " authzid={z}");
            }
            let _ = write!(s, " authcid={authcid} password={}", password.expose());
        }
        Event::AuthLogin { username, password } => {
            let _ = write!(
                s,
                "auth-login user={username} password={}",
                password.expose()
            );
        }
        Event::Vrfy { target } => {
            let _ = write!(s, "vrfy {target}");
        }
        Event::Expn { list } => {
            let _ = write!(s, "expn {list}");
        }
        Event::TlsEstablished => s.push_str("tls-established"),
        Event::Closed { reason } => {
            let reason = match reason {
                CloseReason::Quit => "quit".to_owned(),
                CloseReason::Eof => "eof".to_owned(),
                CloseReason::Timeout => "timeout".to_owned(),
                CloseReason::SendTimeout => "send-timeout".to_owned(),
                CloseReason::TlsHandshakeTimeout => "tls-handshake-timeout".to_owned(),
                CloseReason::TooManyErrors => "too-many-errors".to_owned(),
                CloseReason::StartTlsInjection { discarded } => {
                    format!("starttls-injection discarded={discarded}")
                }
                CloseReason::Shutdown => "shutdown".to_owned(),
                CloseReason::Refused => "refused".to_owned(),
                CloseReason::Synchronization(point) => format!("synchronization {point:?}"),
                other => format!("{other:?}"),
            };
            let _ = write!(s, "closed {reason}");
        }
        other => {
            let _ = write!(s, "{other:?}");
        }
    }
    s
}

/// The arguments of a command as they go on the wire (`FROM:<a@b> SIZE=1`).
fn wire_args(cmd: &Command<'_>) -> String {
    let mut out = Vec::new();
    cmd.encode(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let text = text.trim_end_matches("\r\n");
    text.split_once(' ')
        .map_or(String::new(), |(_, rest)| rest.to_owned())
}
