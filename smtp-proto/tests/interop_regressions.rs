//! Regressions found by driving the server with real clients
//! (`tests/tests/interop_server_clients.rs` in the workspace).

use smtp_proto::address::Mailbox;
use smtp_proto::command::{AuthParam, Command};

fn mail_auth(line: &str) -> Option<AuthParam<'static>> {
    match Command::parse(line.as_bytes()) {
        Ok(Command::Mail { params, .. }) => params.auth().cloned().map(AuthParam::into_owned),
        other => panic!("{line}: {other:?}"),
    }
}

/// curl `--mail-auth a@example.org` sends `AUTH=<a@example.org>`.
#[test]
fn mail_auth_in_angle_brackets_as_curl_sends_it() {
    let expected = AuthParam::Mailbox(Mailbox::parse("a@example.org").unwrap());
    for line in [
        "MAIL FROM:<a@example.org> AUTH=<a@example.org> SIZE=17",
        "MAIL FROM:<a@example.org> AUTH=a@example.org",
        "MAIL FROM:<a@example.org> AUTH=+3Ca@example.org+3E",
    ] {
        assert_eq!(mail_auth(line), Some(expected.clone()), "{line}");
    }
    // Encoding writes the bare addr-spec.
    let cmd = Command::parse(b"MAIL FROM:<> AUTH=<a@example.org>").unwrap();
    let mut out = Vec::new();
    cmd.encode(&mut out);
    assert_eq!(out, b"MAIL FROM:<> AUTH=a@example.org\r\n");
}

#[test]
fn mail_auth_empty_forms_are_unknown() {
    for line in ["MAIL FROM:<> AUTH=<>", "MAIL FROM:<> AUTH=+3C+3E"] {
        assert_eq!(mail_auth(line), Some(AuthParam::Unknown), "{line}");
    }
}

#[test]
fn mail_auth_brackets_do_not_relax_the_mailbox() {
    for line in [
        "MAIL FROM:<> AUTH=<notanaddress>",
        "MAIL FROM:<> AUTH=<a@example.org",
        "MAIL FROM:<> AUTH=<<a@example.org>>",
        "MAIL FROM:<> AUTH=<a+0D+0A@example.org>",
    ] {
        assert!(Command::parse(line.as_bytes()).is_err(), "{line}");
    }
}
