//! Removing `Authentication-Results` fields forged in our name from a
//! message as it streams (RFC 8601 §5).

use super::{FIELD_NAME, authserv_id};

/// What is done with the field being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Copied.
    Keep,
    /// Dropped.
    Drop,
    /// Not judged yet: its octets are held.
    Held,
}

/// Copies a message, dropping the header fields `Authentication-Results`
/// whose authserv-id is ours (compared as domain names: case and a final
/// dot do not matter). Fed in pieces cut anywhere; what it copies comes
/// out in order, octet for octet. The body passes untouched.
///
/// A field is held only until it can be judged: its name shows it is
/// another field, or its authserv-id is complete (a `;` follows, or the
/// field ends), or [`HOLD_LIMIT`](Self::HOLD_LIMIT) octets are held —
/// then the id read so far decides (no id read: kept).
#[derive(Debug, Clone)]
pub struct ForgedFilter {
    ours: String,
    in_body: bool,
    line_start: bool,
    /// A CR at the start of a line: the empty line ending the header
    /// section, if an LF follows.
    cr_at_line_start: bool,
    field: Field,
    held: Vec<u8>,
    removed: usize,
}

impl ForgedFilter {
    /// Octets of one field held at most while it is judged: a domain name
    /// (255) with room for comments and folds.
    pub const HOLD_LIMIT: usize = 1024;

    /// A filter for the authserv-id `ours`.
    pub fn new(ours: &str) -> Self {
        Self {
            ours: normalized(ours),
            in_body: false,
            line_start: true,
            cr_at_line_start: false,
            field: Field::Keep,
            held: Vec::new(),
            removed: 0,
        }
    }

    /// How many fields were removed so far.
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// Filters the next piece of the message into `out`.
    pub fn update(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        while let Some(&b) = chunk.first() {
            if self.in_body {
                out.extend_from_slice(chunk);
                return;
            }
            if self.line_start {
                if self.cr_at_line_start {
                    self.cr_at_line_start = false;
                    self.end_field(out);
                    out.push(b'\r');
                    self.in_body = true;
                    // The LF of the empty line, or (after a bare CR, which
                    // no header line starts with) whatever follows: body.
                    continue;
                }
                match b {
                    b' ' | b'\t' => self.line_start = false,
                    b'\r' => {
                        self.cr_at_line_start = true;
                        chunk = &chunk[1..];
                        continue;
                    }
                    b'\n' => {
                        self.end_field(out);
                        self.in_body = true;
                        continue;
                    }
                    _ => {
                        self.end_field(out);
                        self.field = Field::Held;
                        self.line_start = false;
                    }
                }
            }
            // Inside a line of the current field: up to its LF at once.
            let end = memchr::memchr(b'\n', chunk).map_or(chunk.len(), |i| i + 1);
            let (line, rest) = chunk.split_at(end);
            match self.field {
                Field::Keep => out.extend_from_slice(line),
                Field::Drop => {}
                Field::Held => {
                    self.held.extend_from_slice(line);
                    self.judge(out, false);
                }
            }
            self.line_start = line.ends_with(b"\n");
            chunk = rest;
        }
    }

    /// At the end of the message: anything still held is judged.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.cr_at_line_start {
            self.cr_at_line_start = false;
            self.end_field(out);
            out.push(b'\r');
        }
        self.end_field(out);
        self.in_body = true;
    }

    /// The field being read ended (a new one starts, or the header
    /// section ends).
    fn end_field(&mut self, out: &mut Vec<u8>) {
        if self.field == Field::Held {
            self.judge(out, true);
        }
        self.field = Field::Keep;
    }

    /// Judges the held field if it can be (or must be: `whole`).
    fn judge(&mut self, out: &mut Vec<u8>, whole: bool) {
        let Some(colon) = memchr::memchr(b':', &self.held) else {
            // No name yet. Field names are short: a long run without a
            // colon is no `Authentication-Results` field.
            if whole || self.held.len() > FIELD_NAME.len() + 64 {
                self.release(out, Field::Keep);
            }
            return;
        };
        let name = self.held[..colon].trim_ascii_end();
        if !name.eq_ignore_ascii_case(FIELD_NAME.as_bytes()) {
            self.release(out, Field::Keep);
            return;
        }
        let value = &self.held[colon + 1..];
        if whole || value.contains(&b';') || self.held.len() >= Self::HOLD_LIMIT {
            let ours = authserv_id(value).is_some_and(|id| normalized(&id) == self.ours);
            self.release(out, if ours { Field::Drop } else { Field::Keep });
        }
    }

    /// Decides the held field: copied or dropped, and so is its rest.
    fn release(&mut self, out: &mut Vec<u8>, field: Field) {
        if field == Field::Keep {
            out.extend_from_slice(&self.held);
        } else {
            self.removed += 1;
        }
        self.held.clear();
        self.field = field;
    }
}

/// A domain name for comparison: lower case, no final dot.
fn normalized(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
