//! Shows how the codec understands SMTP lines.
//!
//! ```sh
//! cargo run --release -p smtp-proto --example parse -- 'MAIL FROM:<alice@example.org> SIZE=1024'
//! printf 'EHLO client.example\r\n250-mx.example\r\n250 PIPELINING\r\n' | cargo run --release -p smtp-proto --example parse
//! ```
//!
//! Each argument (or each line of standard input, when there are no
//! arguments) is parsed as a reply when it starts with a three-digit code and
//! as a command otherwise. Consecutive reply lines on standard input form one
//! multi-line reply. The parsed value is printed, then its encoding, so you can
//! see what would go back on the wire.

use std::io::{self, BufRead};

use smtp_proto::command::Command;
use smtp_proto::ehlo::EhloReply;
use smtp_proto::reply::Reply;

const HELP: &str = "\
Shows how the codec understands SMTP lines.

Usage: parse [LINE]...
       parse < FILE

Each LINE (or each line of standard input, when no LINE is given) is parsed
as a reply when it starts with a three-digit code and as a command
otherwise; consecutive reply lines form one multi-line reply. The parsed
value is printed, then its encoding: what would go back on the wire.

Options:
  -h, --help  Print this help
  --          Parse the arguments after it as lines, even one that starts with -

Examples:
  parse 'MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME'
  printf 'EHLO client.example\\r\\n250-mx.example\\r\\n250 PIPELINING\\r\\n' | parse
";

fn main() {
    // No SMTP line starts with `-` (commands start with a letter, replies
    // with a digit), so such an argument is an option.
    let mut args = Vec::new();
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return;
            }
            "--" => args.extend(raw.by_ref()),
            flag if flag.starts_with('-') => {
                eprintln!("parse: unknown option {flag} (--help shows the usage)");
                std::process::exit(2);
            }
            _ => args.push(arg),
        }
    }
    let lines: Vec<String> = if args.is_empty() {
        io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .map(|l| l.trim_end_matches('\r').to_owned())
            .collect()
    } else {
        args
    };

    let mut reply_lines: Vec<&str> = Vec::new();
    for line in &lines {
        if looks_like_reply(line) {
            reply_lines.push(line);
            // A line with a space (or nothing) after the code ends the reply.
            if line.as_bytes().get(3) != Some(&b'-') {
                show_reply(&reply_lines);
                reply_lines.clear();
            }
        } else {
            if !reply_lines.is_empty() {
                show_reply(&reply_lines);
                reply_lines.clear();
            }
            show_command(line);
        }
    }
    if !reply_lines.is_empty() {
        show_reply(&reply_lines);
    }
}

fn looks_like_reply(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit)
}

fn show_command(line: &str) {
    println!("C: {line}");
    match Command::parse(line.as_bytes()) {
        Ok(cmd) => {
            println!("   {cmd:#?}");
            let mut wire = Vec::new();
            cmd.encode(&mut wire);
            println!("   encodes as {:?}", String::from_utf8_lossy(&wire));
            if cmd.needs_smtputf8() {
                println!("   needs SMTPUTF8 (RFC 6531)");
            }
        }
        Err(e) => println!(
            "   error: {e} (a server answers {} {}.{}.{})",
            e.reply_code(),
            e.enhanced_status().0,
            e.enhanced_status().1,
            e.enhanced_status().2
        ),
    }
}

fn show_reply(lines: &[&str]) {
    let mut wire = Vec::new();
    for l in lines {
        println!("S: {l}");
        wire.extend_from_slice(l.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    match Reply::parse(&wire) {
        Ok(Some((reply, _))) => {
            println!("   {reply:#?}");
            if let (true, Ok(ehlo)) = (lines.len() > 1, EhloReply::parse(&reply)) {
                println!("   as an EHLO reply: {:#?}", ehlo.extensions());
            }
        }
        Ok(None) => println!("   incomplete reply (no final line)"),
        Err(e) => println!("   error: {e}"),
    }
}
