//! The header section of a message: where it ends in a stream, its
//! fields, and the choice of field instances a `h=` list signs (RFC 6376
//! §5.4.2).

use std::cmp::Ordering;

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

/// The end of the line starting at `pos`: just after its CRLF, or the end
/// of `section` (a bare LF does not end a line).
fn crlf_end(section: &[u8], pos: usize) -> usize {
    let mut from = pos;
    while let Some(lf) = memchr::memchr(b'\n', &section[from..]) {
        let lf = from + lf;
        if lf > pos && section[lf - 1] == b'\r' {
            return lf + 1;
        }
        from = lf + 1;
    }
    section.len()
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
        let line_end = crlf_end(section, pos);
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

/// Compares two field names without regard to ASCII case (RFC 5322
/// §1.2.2: field names are case-insensitive).
fn cmp_caseless(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_ascii_lowercase(), y.to_ascii_lowercase());
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// The fields of a header section, indexed by name for `h=` selection.
#[derive(Debug, Clone)]
pub(crate) struct HeaderIndex<'a> {
    section: &'a [u8],
    pub(crate) fields: Vec<Field>,
    /// The named fields' indices, ordered by name (case-insensitively),
    /// then top to bottom: one allocation, binary-searched by name.
    sorted: Vec<usize>,
}

impl<'a> HeaderIndex<'a> {
    pub(crate) fn new(section: &'a [u8]) -> Self {
        let fields = split_fields(section);
        let mut sorted: Vec<usize> = (0..fields.len())
            .filter(|&i| fields[i].name_end > fields[i].start)
            .collect();
        // A stable sort keeps equal names in message order.
        sorted.sort_by(|&x, &y| {
            cmp_caseless(
                &section[fields[x].start..fields[x].name_end],
                &section[fields[y].start..fields[y].name_end],
            )
        });
        Self {
            section,
            fields,
            sorted,
        }
    }

    /// The instances of `name`, top to bottom.
    fn instances(&self, name: &[u8]) -> &[usize] {
        let key = |&i: &usize| cmp_caseless(self.name(i), name);
        let lo = self.sorted.partition_point(|i| key(i) == Ordering::Less);
        let rest = &self.sorted[lo..];
        let len = rest.partition_point(|i| key(i) == Ordering::Equal);
        &rest[..len]
    }

    /// How many instances of `name` the section has.
    pub(crate) fn count(&self, name: &[u8]) -> usize {
        self.instances(name).len()
    }

    /// The field instances a `h=` list selects, in list order: for each
    /// name, the last instance not yet selected, or none when every
    /// instance has been (RFC 6376 §5.4.2: fields are taken from the bottom
    /// up, and a name listed more often than it occurs selects nothing —
    /// the "over-signing" that stops an instance from being added).
    pub(crate) fn select<'n>(&self, names: impl IntoIterator<Item = &'n [u8]>) -> Vec<usize> {
        // Per distinct name: where its instances start in `sorted`, and how
        // many were taken. `h=` lists are short (bounded by the verifier).
        let mut used: Vec<(usize, usize)> = Vec::new();
        let mut out = Vec::new();
        for name in names {
            let instances = self.instances(name);
            let Some(&first) = instances.first() else {
                continue;
            };
            let taken = match used.iter_mut().find(|(f, _)| *f == first) {
                Some((_, taken)) => taken,
                None => {
                    used.push((first, 0));
                    // Just pushed.
                    &mut used.last_mut().expect("an entry").1
                }
            };
            if *taken < instances.len() {
                out.push(instances[instances.len() - 1 - *taken]);
                *taken += 1;
            }
        }
        out
    }

    /// The field's name as it appears (case kept).
    pub(crate) fn name(&self, i: usize) -> &'a [u8] {
        let f = self.fields[i];
        &self.section[f.start..f.name_end]
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

/// The first CRLF CRLF at or after `from`.
fn find_empty_line(hay: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(lf) = memchr::memchr(b'\n', &hay[at..]) {
        let lf = at + lf;
        if lf >= from + 3 && &hay[lf - 3..=lf] == b"\r\n\r\n" {
            return Some(lf - 3);
        }
        at = lf + 1;
    }
    None
}

impl Splitter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            section: Vec::with_capacity(limit.min(1024)),
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
        // Copy no further than an end found in the chunk itself: the body
        // after it is never held.
        let room = (self.limit + 4).saturating_sub(old);
        let end_in_chunk = if old == 0 && chunk.starts_with(b"\r\n") {
            Some(2)
        } else {
            find_empty_line(chunk, 0).map(|p| p + 4)
        };
        let take = chunk
            .len()
            .min(room)
            .min(end_in_chunk.unwrap_or(usize::MAX));
        self.section.extend_from_slice(&chunk[..take]);
        let found = if self.section.starts_with(b"\r\n") {
            Some((0, 2))
        } else {
            find_empty_line(&self.section, old.saturating_sub(3)).map(|p| (p + 2, p + 4))
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
        assert_eq!(index.name(1), b"To");
        assert_eq!(index.count(b"FROM"), 2);
        assert_eq!(index.count(b"cc"), 0);
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
