//! Proptest generators of valid addresses, shared by the address and
//! command tests (included by `#[path]`: the test support crate
//! `smtp-tests` depends on `smtp-proto` itself, so these tests cannot take it
//! as a dev-dependency without compiling a second, incompatible
//! `smtp-proto`).

use core::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use smtp_proto::address::{
    AddressLiteral, Domain, ForwardPath, Host, LocalPart, Mailbox, ReversePath,
};

/// A domain label: LDH (with `_`, which the parser tolerates) or UTF-8.
pub(crate) fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]([a-zA-Z0-9_-]{0,12}[a-zA-Z0-9])?",
        "[a-z0-9éüß漢字]{1,6}",
    ]
}

/// A domain of one to four labels.
pub(crate) fn domain() -> impl Strategy<Value = Domain<'static>> {
    prop::collection::vec(label(), 1..5)
        .prop_map(|labels| Domain::new(&labels.join(".")).unwrap().into_owned())
}

/// An address literal: IPv4, IPv6 (from groups or one number) or general.
pub(crate) fn literal() -> impl Strategy<Value = AddressLiteral<'static>> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| AddressLiteral::Ipv4(Ipv4Addr::from(a))),
        any::<[u16; 8]>().prop_map(|a| AddressLiteral::Ipv6(Ipv6Addr::from(a))),
        any::<u128>().prop_map(|a| AddressLiteral::Ipv6(Ipv6Addr::from(a))),
        (
            "[a-zA-Z0-9]([a-zA-Z0-9-]{0,5}[a-zA-Z0-9])?",
            "[!-Z^-~]{1,12}"
        )
            .prop_filter_map("IPv6 tag is reserved", |(t, c)| AddressLiteral::general(
                &t, &c
            )
            .ok()
            .map(AddressLiteral::into_owned)),
    ]
}

/// A host: mostly a domain, sometimes a literal.
pub(crate) fn host() -> impl Strategy<Value = Host<'static>> {
    prop_oneof![
        3 => domain().prop_map(Host::Domain),
        1 => literal().prop_map(Host::Literal),
    ]
}

/// A local part: dot-atoms, printable ASCII (quoted when it must be),
/// quotes and backslashes, any non-control UTF-8.
pub(crate) fn local_part() -> impl Strategy<Value = LocalPart<'static>> {
    prop_oneof![
        prop::collection::vec("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,8}", 1..4)
            .prop_map(|v| v.join(".")),
        "[ -~]{0,20}",
        "[a-z\" \\\\.]{0,12}",
        "\\PC{0,12}",
    ]
    .prop_filter_map("too long", |s| {
        LocalPart::new(&s).ok().map(LocalPart::into_owned)
    })
}

/// A mailbox within the path length limit.
pub(crate) fn mailbox() -> impl Strategy<Value = Mailbox<'static>> {
    (local_part(), host()).prop_filter_map("path too long", |(l, h)| Mailbox::new(l, h).ok())
}

/// A reverse-path: sometimes null, mostly a mailbox.
pub(crate) fn reverse_path() -> impl Strategy<Value = ReversePath<'static>> {
    prop_oneof![
        1 => Just(ReversePath::Null),
        5 => mailbox().prop_map(ReversePath::Mailbox),
    ]
}

/// A forward-path: sometimes `<Postmaster>`, mostly a mailbox.
pub(crate) fn forward_path() -> impl Strategy<Value = ForwardPath<'static>> {
    prop_oneof![
        1 => Just(ForwardPath::Postmaster),
        5 => mailbox().prop_map(ForwardPath::Mailbox),
    ]
}
