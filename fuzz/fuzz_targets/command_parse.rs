//! Arbitrary bytes as a command line: no panic; whatever parses re-encodes
//! (with no CR, LF or NUL before the final CRLF) and re-parses to the same
//! command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::command::Command;

fuzz_target!(|data: &[u8]| {
    let Ok(cmd) = Command::parse(data) else {
        return;
    };
    let mut wire = Vec::new();
    cmd.encode(&mut wire);
    let line = wire.strip_suffix(b"\r\n").expect("commands end in CRLF");
    assert!(
        !line.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
        "an encoded command carries CR, LF or NUL: {wire:?}"
    );
    let again = Command::parse(line).expect("an encoded command parses");
    assert_eq!(again, cmd);
    assert_eq!(again.needs_smtputf8(), cmd.needs_smtputf8());
});
