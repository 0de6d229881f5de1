//! Structured commands built through the validating constructors: encode,
//! parse, and get the same command back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smtp_proto::address::{Domain, ForwardPath, Host, LocalPart, Mailbox, ReversePath};
use smtp_proto::command::{
    Argument, Body, Command, InitialResponse, MailParameters, Notify, NotifyOn, RcptParameters, Ret,
};
use smtp_proto::keyword::Mechanism;
use smtp_proto::xtext::XText;

#[derive(Debug, Arbitrary)]
enum Shape {
    Helo(String),
    Ehlo(String),
    Lhlo(String),
    Mail {
        local: Option<String>,
        domain: String,
        size: Option<u64>,
        body: u8,
        smtputf8: bool,
        ret: Option<bool>,
        envid: Option<String>,
        requiretls: bool,
    },
    Rcpt {
        local: Option<String>,
        domain: String,
        notify: Option<(bool, bool, bool)>,
    },
    Data,
    Rset,
    Quit,
    StartTls,
    Vrfy(String),
    Expn(String),
    Help(Option<String>),
    Noop(Option<String>),
    Auth(String, Option<Vec<u8>>),
    Bdat(u64, bool),
}

fn mailbox<'a>(local: &'a str, domain: &'a str) -> Option<Mailbox<'a>> {
    Mailbox::new(LocalPart::new(local).ok()?, Domain::new(domain).ok()?).ok()
}

fn build(shape: &Shape) -> Option<Command<'_>> {
    Some(match shape {
        Shape::Helo(d) => Command::Helo {
            host: Host::Domain(Domain::new(d).ok()?),
        },
        Shape::Ehlo(d) => Command::Ehlo {
            host: Host::Domain(Domain::new(d).ok()?),
        },
        Shape::Lhlo(d) => Command::Lhlo {
            host: Host::Domain(Domain::new(d).ok()?),
        },
        Shape::Mail {
            local,
            domain,
            size,
            body,
            smtputf8,
            ret,
            envid,
            requiretls,
        } => {
            let from = match local {
                None => ReversePath::Null,
                Some(l) => ReversePath::Mailbox(mailbox(l, domain)?),
            };
            let params = MailParameters {
                size: *size,
                body: match body % 4 {
                    0 => None,
                    1 => Some(Body::SevenBit),
                    2 => Some(Body::EightBitMime),
                    _ => Some(Body::BinaryMime),
                },
                smtputf8: *smtputf8,
                ret: ret.map(|full| if full { Ret::Full } else { Ret::Hdrs }),
                envid: match envid {
                    Some(e) => Some(XText::new(e.as_str()).ok()?),
                    None => None,
                },
                requiretls: *requiretls,
                ..MailParameters::default()
            };
            Command::Mail { from, params }
        }
        Shape::Rcpt {
            local,
            domain,
            notify,
        } => {
            let to = match local {
                None => ForwardPath::Postmaster,
                Some(l) => ForwardPath::Mailbox(mailbox(l, domain)?),
            };
            let params = RcptParameters {
                notify: match notify {
                    None => None,
                    Some((false, false, false)) => Some(Notify::Never),
                    Some((s, f, d)) => Some(Notify::On(NotifyOn::new(*s, *f, *d)?)),
                },
                ..RcptParameters::default()
            };
            Command::Rcpt { to, params }
        }
        Shape::Data => Command::Data,
        Shape::Rset => Command::Rset,
        Shape::Quit => Command::Quit,
        Shape::StartTls => Command::StartTls,
        Shape::Vrfy(a) => Command::Vrfy {
            target: Argument::new(a).ok()?,
        },
        Shape::Expn(a) => Command::Expn {
            list: Argument::new(a).ok()?,
        },
        Shape::Help(a) => Command::Help {
            topic: match a {
                Some(a) => Some(Argument::new(a).ok()?),
                None => None,
            },
        },
        Shape::Noop(a) => Command::Noop {
            text: match a {
                Some(a) => Some(Argument::new(a).ok()?),
                None => None,
            },
        },
        Shape::Auth(m, ir) => Command::Auth {
            mechanism: Mechanism::new(m).ok()?,
            initial_response: ir.as_deref().map(InitialResponse::new),
        },
        Shape::Bdat(n, last) => Command::Bdat {
            size: *n,
            last: *last,
        },
    })
}

fuzz_target!(|shape: Shape| {
    let Some(cmd) = build(&shape) else {
        return; // a constructor refused the value: that is its job
    };
    let mut wire = Vec::new();
    cmd.encode(&mut wire);
    let line = wire.strip_suffix(b"\r\n").expect("commands end in CRLF");
    assert!(!line.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
    let parsed = Command::parse(line).expect("a constructed command parses");
    assert_eq!(parsed, cmd);
});
