//! The server's two byte buffers, both bounded.
//!
//! The input buffer always starts at the first unprocessed byte (the line
//! framer and the dot-unstuffer both want that). Bytes handed out in an
//! event stay at the front until the next call that may mutate the server
//! ([`Input::settle`]): the event borrows them, so they cannot be dropped
//! earlier, and borrowck guarantees they are not used later.
//!
//! After a large body has passed through, the allocation is shrunk back so
//! that an idle session holds at most [`IDLE_CAPACITY`] bytes per buffer.

/// Capacity an idle buffer is shrunk back to.
pub(crate) const IDLE_CAPACITY: usize = 4096;

/// Bytes from the peer not yet processed.
#[derive(Debug)]
pub(crate) struct Input {
    buf: Vec<u8>,
    /// Bytes at the front already handed out (in an event) and to be
    /// dropped on the next [`Input::settle`].
    handed_out: usize,
    limit: usize,
}

impl Input {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            handed_out: 0,
            limit,
        }
    }

    /// Drops the bytes handed out by the last event and shrinks an
    /// oversized allocation.
    pub(crate) fn settle(&mut self) {
        self.consume(self.handed_out);
        self.handed_out = 0;
        if self.buf.capacity() > IDLE_CAPACITY && self.buf.len() <= IDLE_CAPACITY / 2 {
            self.buf.shrink_to(IDLE_CAPACITY);
        }
    }

    /// Room left before the limit.
    pub(crate) fn room(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }

    /// Appends as much of `data` as fits; returns how much.
    pub(crate) fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        if let Some(part) = data.get(..n) {
            self.buf.extend_from_slice(part);
        }
        n
    }

    /// The unprocessed bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer itself, for in-place unstuffing.
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Removes `n` bytes from the front now.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
    }

    /// Marks `n` bytes at the front as handed out in an event: they are
    /// removed on the next [`Input::settle`].
    pub(crate) fn hand_out(&mut self, n: usize) {
        self.handed_out = n.min(self.buf.len());
    }

    /// Drops everything (STARTTLS boundary, close); returns how many bytes
    /// were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.buf.len();
        self.buf = Vec::new();
        self.handed_out = 0;
        n
    }

    /// Number of unprocessed bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The allocation's size, for tests of the idle footprint.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Replies queued for the peer.
#[derive(Debug)]
pub(crate) struct Output {
    buf: Vec<u8>,
    sent: usize,
    limit: usize,
}

impl Output {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            sent: 0,
            limit,
        }
    }

    /// The queue for appending a reply.
    pub(crate) fn queue(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes not yet written.
    pub(crate) fn pending(&self) -> &[u8] {
        self.buf.get(self.sent..).unwrap_or_default()
    }

    /// Whether the queue holds so much that no further command should be
    /// answered until the peer reads.
    pub(crate) fn is_full(&self) -> bool {
        self.pending().len() >= self.limit
    }

    /// Records that `n` bytes were written; `Err(pending)` if `n` is more
    /// than was pending.
    pub(crate) fn advance(&mut self, n: usize) -> Result<(), usize> {
        let pending = self.pending().len();
        if n > pending {
            return Err(pending);
        }
        self.sent += n;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
            if self.buf.capacity() > IDLE_CAPACITY {
                self.buf.shrink_to(IDLE_CAPACITY / 4);
            }
        }
        Ok(())
    }

    /// Drops everything queued (the peer stopped reading).
    pub(crate) fn clear(&mut self) {
        self.buf = Vec::new();
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_bounded_and_shrinks() {
        let mut input = Input::new(10_000);
        assert_eq!(input.push(&[b'x'; 12_000]), 10_000);
        assert_eq!(input.room(), 0);
        assert_eq!(input.push(b"y"), 0);
        input.hand_out(9_990);
        assert_eq!(input.len(), 10_000, "handed-out bytes stay until settled");
        input.settle();
        assert_eq!(input.len(), 10);
        assert!(input.capacity() <= IDLE_CAPACITY);
    }

    #[test]
    fn output_advances_and_refuses_overrun() {
        let mut out = Output::new(4096);
        out.queue().extend_from_slice(b"250 Ok\r\n");
        assert_eq!(out.advance(3), Ok(()));
        assert_eq!(out.pending(), b" Ok\r\n");
        assert_eq!(out.advance(6), Err(5));
        assert_eq!(out.advance(5), Ok(()));
        assert!(out.pending().is_empty());
    }
}
