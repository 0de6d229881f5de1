//! The header section of a message: where it ends in a stream, its
//! fields, and the choice of field instances a `h=` list signs (RFC 6376
//! §5.4.2).

use std::collections::BTreeMap;

/// One header field: a range of the header section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    /// Start of the field (its name).
    pub(crate) start: usize,
    /// End of the name (before any white space and the colon); equal to
    /// `start` for a line without a usable name.
    pub(crate) name_end: usize,
    /// End of the field, after its final CRLF (if it has one).
    pub(crate) end: usize,
}

/// RFC 5322 §3.6.8 `ftext`: printable ASCII but `:`.
fn is_ftext(b: u8) -> bool {
    matches!(b, 33..=57 | 59..=126)
}

/// Splits a header section into fields (RFC 5322 §2.2): a field starts at
/// a line that does not begin with white space and goes on over the
/// folded lines that do. Lines end at CRLF (a bare CR or LF is an ordinary
/// byte, as on the wire, where messages are CRLF text).
///
/// A line that is not `name:` (no colon, a byte outside `ftext` in the
/// name, or white space before the first field) still becomes a field, with
/// an empty name: it is hashed by nobody, since no `h=` entry can name it,
/// and it never shifts which instance of a real field a signature selects.
pub(crate) fn split_fields(section: &[u8]) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < section.len() {
        let line_end =
            memchr::memmem::find(&section[pos..], b"\r\n").map_or(section.len(), |p| pos + p + 2);
        let first = section[pos];
        let continuation = (first == b' ' || first == b'\t') && !fields.is_empty();
        if continuation {
            if let Some(last) = fields.last_mut() {
                last.end = line_end;
            }
        } else {
            let line = &section[pos..line_end];
            let name_len = line
                .iter()
                .position(|&b| !is_ftext(b))
                .unwrap_or(line.len());
            // The name may be followed by white space, then the colon
            // (RFC 5322 §4.5 obs-optional).
            let mut colon = name_len;
            while matches!(line.get(colon), Some(b' ' | b'\t')) {
                colon += 1;
            }
            let named = name_len > 0 && line.get(colon) == Some(&b':');
            fields.push(Field {
                start: pos,
                name_end: if named { pos + name_len } else { pos },
                end: line_end,
            });
        }
        pos = line_end;
    }
    fields
}

/// The fields of a header section, indexed by lower-case name for `h=`
/// selection.
#[derive(Debug, Clone)]
pub(crate) struct HeaderIndex {
    pub(crate) fields: Vec<Field>,
    /// Field indices per lower-case name, top to bottom.
    by_name: BTreeMap<Vec<u8>, Vec<usize>>,
}

impl HeaderIndex {
    pub(crate) fn new(section: &[u8]) -> Self {
        let fields = split_fields(section);
        let mut by_name: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
        for (i, field) in fields.iter().enumerate() {
            if field.name_end > field.start {
                by_name
                    .entry(section[field.start..field.name_end].to_ascii_lowercase())
                    .or_default()
                    .push(i);
            }
        }
        Self { fields, by_name }
    }

    /// How many instances of `name` (lower case) the section has.
    pub(crate) fn count(&self, name: &[u8]) -> usize {
        self.by_name.get(name).map_or(0, Vec::len)
    }

    /// The field instances a `h=` list selects, in list order: for each
    /// name, the last instance not yet selected, or none when every
    /// instance has been (RFC 6376 §5.4.2: fields are taken from the bottom
    /// up, and a name listed more often than it occurs selects nothing —
    /// the "over-signing" that stops an instance from being added).
    /// `names` must be lower case.
    pub(crate) fn select<'n>(&self, names: impl IntoIterator<Item = &'n [u8]>) -> Vec<usize> {
        let mut used: BTreeMap<&[u8], usize> = BTreeMap::new();
        let mut out = Vec::new();
        for name in names {
            let Some(instances) = self.by_name.get(name) else {
                continue;
            };
            let taken = used.entry(name).or_insert(0);
            if *taken < instances.len() {
                out.push(instances[instances.len() - 1 - *taken]);
                *taken += 1;
            }
        }
        out
    }

    /// The field's name as it appears (case kept).
    pub(crate) fn name<'s>(&self, section: &'s [u8], i: usize) -> &'s [u8] {
        let f = self.fields[i];
        &section[f.start..f.name_end]
    }
}

/// Finds the end of the header section in a stream.
///
/// The header section ends at the first empty line (RFC 5322 §2.1); the
/// splitter keeps the section (with the CRLF of its last field, without the
/// empty line) and hands on everything after the empty line as body. A
/// message that starts with an empty line has an empty header section; one
/// without an empty line is all header.
#[derive(Debug, Clone)]
pub(crate) struct Splitter {
    section: Vec<u8>,
    limit: usize,
    state: SplitState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitState {
    /// Still in the header section.
    Header,
    /// The section is complete; the rest is body.
    Body,
    /// The section grew beyond the limit; nothing more is kept.
    Overflow,
}

/// What one [`Splitter::feed`] found.
pub(crate) enum Fed<'a> {
    /// Still in the header section.
    Header,
    /// The section just ended; `body` is the part of the chunk after it.
    HeaderDone { body: &'a [u8] },
    /// Body bytes.
    Body(&'a [u8]),
    /// The header section is larger than the limit.
    Overflow,
}

impl Splitter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            section: Vec::new(),
            limit,
            state: SplitState::Header,
        }
    }

    /// The header section (complete once [`Fed::HeaderDone`] was seen or
    /// the stream ended; its first `limit` octets after an overflow).
    pub(crate) fn section(&self) -> &[u8] {
        &self.section
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.state == SplitState::Overflow
    }

    pub(crate) fn feed<'a>(&mut self, chunk: &'a [u8]) -> Fed<'a> {
        match self.state {
            SplitState::Body => return Fed::Body(chunk),
            SplitState::Overflow => return Fed::Overflow,
            SplitState::Header => {}
        }
        let old = self.section.len();
        // The end is CRLF CRLF, or a CRLF at the very start. Search from
        // three bytes back so that an end cut between chunks is found, and
        // look at no more of the chunk than the limit allows (plus the
        // empty line itself).
        let room = (self.limit + 4).saturating_sub(old);
        let take = chunk.len().min(room);
        self.section.extend_from_slice(&chunk[..take]);
        let found = if self.section.starts_with(b"\r\n") {
            Some((0, 2))
        } else {
            memchr::memmem::find(&self.section[old.saturating_sub(3)..], b"\r\n\r\n")
                .map(|p| (old.saturating_sub(3) + p + 2, old.saturating_sub(3) + p + 4))
        };
        match found {
            Some((section_end, body_start)) if section_end <= self.limit => {
                // `body_start` lies within what was kept, at or after `old`
                // (the end was not found in an earlier feed).
                let body = &chunk[body_start - old..];
                self.section.truncate(section_end);
                self.state = SplitState::Body;
                Fed::HeaderDone { body }
            }
            Some(_) => self.overflow(),
            // A later end would finish at or after the next byte, at most
            // `limit` octets in only if at most `limit + 1` are held now.
            None if self.section.len() > self.limit + 1 => self.overflow(),
            None => Fed::Header,
        }
    }

    /// Past the limit: the first `limit` octets are kept (a verifier
    /// still names the signatures found there), nothing more.
    fn overflow<'a>(&mut self) -> Fed<'a> {
        self.state = SplitState::Overflow;
        self.section.truncate(self.limit);
        Fed::Overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_folding_and_odd_lines() {
        let section = b"From: a\r\nSubject : b\r\n c\r\nnot a field\r\nTo:x\r\n";
        let fields = split_fields(section);
        let text: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|f| (&section[f.start..f.name_end], &section[f.start..f.end]))
            .collect();
        assert_eq!(
            text,
            vec![
                (&b"From"[..], &b"From: a\r\n"[..]),
                (b"Subject", b"Subject : b\r\n c\r\n"),
                (b"", b"not a field\r\n"),
                (b"To", b"To:x\r\n"),
            ]
        );
        // A last field without CRLF, a first line with leading white space.
        let fields = split_fields(b" x: y\r\nA:b");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].name_end, fields[0].start);
        assert_eq!(fields[1].end, 10);
    }

    #[test]
    fn selection_takes_instances_from_the_bottom() {
        let section = b"From: 1\r\nTo: a\r\nFrom: 2\r\nSubject: s\r\n";
        let index = HeaderIndex::new(section);
        let names: [&[u8]; 5] = [b"from", b"subject", b"from", b"from", b"cc"];
        assert_eq!(index.select(names), vec![2, 3, 0]);
        assert_eq!(index.count(b"from"), 2);
        assert_eq!(index.name(section, 1), b"To");
    }

    fn split_all(message: &[u8], cuts: &[usize], limit: usize) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut splitter = Splitter::new(limit);
        let mut body = Vec::new();
        let mut start = 0;
        let mut pieces: Vec<&[u8]> = Vec::new();
        for &c in cuts {
            pieces.push(&message[start..c]);
            start = c;
        }
        pieces.push(&message[start..]);
        for piece in pieces {
            match splitter.feed(piece) {
                Fed::Header => {}
                Fed::HeaderDone { body: b } | Fed::Body(b) => body.extend_from_slice(b),
                Fed::Overflow => return None,
            }
        }
        Some((splitter.section().to_vec(), body))
    }

    #[test]
    fn splitter_finds_the_empty_line_at_any_cut() {
        let message = b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n";
        for i in 0..=message.len() {
            for j in i..=message.len() {
                let (section, body) = split_all(message, &[i, j], 1000).unwrap();
                assert_eq!(section, b"A: 1\r\nB: 2\r\n", "{i} {j}");
                assert_eq!(body, b"body\r\n\r\n", "{i} {j}");
            }
        }
        let (section, body) = split_all(b"\r\nbody", &[1], 1000).unwrap();
        assert_eq!(
            (section.as_slice(), body.as_slice()),
            (&b""[..], &b"body"[..])
        );
        let (section, body) = split_all(b"A: 1\r\n", &[], 1000).unwrap();
        assert_eq!(
            (section.as_slice(), body.as_slice()),
            (&b"A: 1\r\n"[..], &b""[..])
        );
    }

    #[test]
    fn splitter_limit() {
        let message = b"A: 1\r\nB: 2\r\n\r\nbody";
        // The section is 12 octets.
        assert!(split_all(message, &[3], 12).is_some());
        assert!(split_all(message, &[3], 11).is_none());
        assert!(split_all(b"A: 123456789\r\n", &[], 8).is_none());
        // The end cut right after the limit.
        assert!(split_all(message, &[13], 12).is_some());
        assert!(split_all(message, &[14], 12).is_some());
    }
}
