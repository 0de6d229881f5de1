//! Maildir delivery that never loses an accepted message and never leaves a
//! half-written one where a mail reader would see it.
//!
//! A Maildir (the qmail/Dovecot convention) is a directory with three
//! subdirectories: `tmp/` for messages being written, `new/` for delivered
//! messages no reader has seen yet, and `cur/` for those it has. Readers only
//! look at `new/` and `cur/`; a file appears there by `rename`, which is
//! atomic, so a reader sees a message whole or not at all.
//!
//! A server may only answer `250` to the end of a message once the message
//! is safe (RFC 5321 §6.1: "it MUST NOT lose the message"). So a
//! [`Delivery`] goes through these steps, in this order, and
//! [`Delivery::commit`] returns only after the last one:
//!
//! 1. create `tmp/<unique>` (`O_EXCL`: never overwrite anything);
//! 2. write the `Received:` header and the body in chunks as they arrive
//!    (through a small fixed buffer: the message is never held whole);
//! 3. flush and `fsync` the file: the bytes are on disk;
//! 4. `rename` it into `new/<unique>`: the message becomes visible whole;
//! 5. `fsync` the `new/` directory: the rename itself survives a crash.
//!
//! If anything fails, or the delivery is dropped or aborted (the client
//! disconnected in the middle of DATA, the message was too big), the file is
//! removed: `tmp/` keeps no leftovers and `new/` never holds a message that
//! did not get its `250`. Should the final directory `fsync` fail, the
//! renamed file is removed again, because the caller will answer `451` and
//! the client will send the message again.
//!
//! Unique names follow the Maildir convention as Dovecot writes it:
//! `<seconds>.M<microseconds>P<pid>Q<sequence>.<host>`, where the sequence is
//! a process-wide atomic counter, so two deliveries of one process never
//! share a name even within one microsecond, and the pid and time separate
//! processes. The name (the [`MessageId`]) is also the id in the `Received:`
//! header and in the `250` reply, which ties a log line to a file.
//!
//! The message is stored as it was transmitted, CRLF line endings included
//! (Dovecot and mutt read both forms): byte for byte what the client sent
//! after dot-unstuffing, behind the trace header.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::trace::Received;

/// How old a file in `tmp/` must be to be removed as a crashed delivery's
/// leftover: 36 hours, the Maildir convention (qmail's `maildir(5)`,
/// Dovecot).
pub const TMP_MAX_AGE: Duration = Duration::from_secs(36 * 60 * 60);

/// Deliveries started by this process: the `Q` part of unique names.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Write buffer of a delivery. Small because a server may have thousands of
/// messages in flight; body chunks larger than this go straight to the file.
const WRITE_BUFFER: usize = 8 * 1024;

/// How often `begin` tries another name when one already exists in `tmp/`
/// (only possible if another process with the same pid wrote in the same
/// microsecond, e.g. across a pid namespace sharing the directory).
const NAME_ATTEMPTS: u32 = 8;

/// A Maildir on disk, shared by every connection that delivers into it
/// (it is `Send + Sync`; keep it in an `Arc`).
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    tmp: PathBuf,
    new: PathBuf,
    /// The host part of unique names, already escaped.
    host: String,
}

/// The unique name of a delivered message: its file name in `new/`, the id
/// in its `Received:` header, and what a server puts in its `250` reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

impl MessageId {
    /// The id as text (only characters safe in file names and replies).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Maildir {
    /// Opens the Maildir at `dir`, creating it and its `tmp/`, `new/` and
    /// `cur/` subdirectories (mode 0700 on Unix: mail is private) if they do
    /// not exist, and removes what a crashed writer left in `tmp/` long ago
    /// (see [`Maildir::clean_tmp`]). Unique names use this machine's host
    /// name.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let root = dir.into();
        fs::create_dir_all(&root)?;
        for sub in ["tmp", "new", "cur"] {
            create_private_dir(&root.join(sub))?;
        }
        let maildir = Self {
            tmp: root.join("tmp"),
            new: root.join("new"),
            root,
            host: escape_host(&system_hostname()),
        };
        // Best effort: a leftover that cannot be removed is never read.
        let _ = maildir.clean_tmp(SystemTime::now(), TMP_MAX_AGE);
        Ok(maildir)
    }

    /// Removes the files in `tmp/` last modified more than `max_age` before
    /// `now`; returns how many. A delivery killed with its process (power
    /// loss, SIGKILL) leaves its file there; no reader ever looks in `tmp/`
    /// and every name is unique, so leftovers are harmless, but they take
    /// space. A file that old cannot belong to a delivery in progress (the
    /// data timeout ends any session long before), so removing it is safe
    /// even while other processes deliver into the same Maildir — the
    /// Maildir convention's rule, with its 36 hours ([`TMP_MAX_AGE`]).
    pub fn clean_tmp(&self, now: SystemTime, max_age: Duration) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| now.duration_since(modified).is_ok_and(|age| age > max_age));
            if old
                && entry.file_type().is_ok_and(|t| t.is_file())
                && fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Uses `hostname` instead of the system's in unique names (`/` and `:`
    /// are escaped as `\057` and `\072`, as the convention asks).
    pub fn with_hostname(mut self, hostname: &str) -> Self {
        self.host = escape_host(hostname);
        self
    }

    /// The Maildir's root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Starts a delivery whose file begins with `received`, with the new
    /// message's id filled in if `received` has none.
    pub fn begin(&self, received: &Received<'_>) -> io::Result<Delivery> {
        let mut delivery = self.begin_untraced()?;
        let mut header = Vec::with_capacity(512);
        let id = delivery.id.clone();
        let received = match received.id {
            Some(_) => received.clone(),
            None => received.clone().with_id(id.as_str()),
        };
        received.encode(&mut header);
        delivery.write(&header)?;
        Ok(delivery)
    }

    /// Starts a delivery with no trace header (for content that already has
    /// one, or a store that adds its own).
    pub fn begin_untraced(&self) -> io::Result<Delivery> {
        let mut attempt = 0;
        loop {
            let id = self.unique_name();
            let tmp_path = self.tmp.join(id.as_str());
            match create_exclusive(&tmp_path) {
                Ok(file) => {
                    return Ok(Delivery {
                        new_path: self.new.join(id.as_str()),
                        new_dir: self.new.clone(),
                        tmp_path,
                        id,
                        file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
                        size: 0,
                        stage: Stage::Writing,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < NAME_ATTEMPTS => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `<seconds>.M<microseconds>P<pid>Q<sequence>.<host>`.
    fn unique_name(&self) -> MessageId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        MessageId(format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            seq,
            self.host
        ))
    }
}

/// Where a delivery is, which decides what dropping it must clean up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The file is in `tmp/`.
    Writing,
    /// The file was renamed into `new/` but the directory is not synced.
    Renamed,
    /// Delivered and durable; nothing to clean.
    Committed,
    /// The file was removed.
    Removed,
}

/// One message being written into a [`Maildir`].
///
/// Dropping it without [`commit`](Self::commit) removes its file, so an
/// error path (`?`), a disconnect or a panic in a handler can never leave a
/// partial message behind.
#[derive(Debug)]
#[must_use = "a delivery that is dropped is discarded: call commit()"]
pub struct Delivery {
    id: MessageId,
    tmp_path: PathBuf,
    new_path: PathBuf,
    new_dir: PathBuf,
    /// `None` once a write failed or the file was closed.
    file: Option<BufWriter<File>>,
    size: u64,
    stage: Stage,
}

impl Delivery {
    /// The id the message will have once committed.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// Bytes written so far, trace header included.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a chunk of the message. After an error the delivery is
    /// failed: further writes and [`commit`](Self::commit) return an error,
    /// and dropping it removes the file.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(failed_earlier)?;
        if let Err(e) = file.write_all(chunk) {
            self.file = None;
            return Err(e);
        }
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Makes the message durable and visible, in the order the module docs
    /// give: flush, `fsync` the file, rename into `new/`, `fsync` `new/`.
    /// Returns the message id only when all of that succeeded; on error
    /// nothing of the message is left in the Maildir.
    pub fn commit(mut self) -> io::Result<MessageId> {
        let file = self.file.take().ok_or_else(failed_earlier)?;
        // Step 3: flush our buffer, then the kernel's.
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        // Step 4: the message appears in new/ whole.
        fs::rename(&self.tmp_path, &self.new_path)?;
        self.stage = Stage::Renamed;
        // Step 5: the directory entry is on disk too.
        sync_dir(&self.new_dir)?;
        self.stage = Stage::Committed;
        Ok(self.id.clone())
    }

    /// Puts `header` (whole header fields, CRLF-terminated) in front of
    /// what was written, then [`commit`](Self::commit)s. For fields known
    /// only once the whole message was read, such as
    /// `Authentication-Results` (RFC 8601 §5: prepended). The file is
    /// rewritten once — a new file in `tmp/` gets the header and a copy of
    /// the old (a kernel-side copy where the system has one), then replaces
    /// it — so call this off the event loop, like `commit`.
    pub fn commit_with_header(mut self, header: &[u8]) -> io::Result<MessageId> {
        if !header.is_empty() {
            self.prepend(header)?;
        }
        self.commit()
    }

    fn prepend(&mut self, header: &[u8]) -> io::Result<()> {
        let file = self.file.take().ok_or_else(failed_earlier)?;
        file.into_inner().map_err(io::IntoInnerError::into_error)?;
        let mut side = self.tmp_path.clone().into_os_string();
        side.push(".h");
        let side = PathBuf::from(side);
        let result = (|| {
            let mut new = create_exclusive(&side)?;
            new.write_all(header)?;
            let mut old = File::open(&self.tmp_path)?;
            io::copy(&mut old, &mut new)?;
            fs::rename(&side, &self.tmp_path)?;
            Ok(new)
        })();
        match result {
            Ok(new) => {
                self.file = Some(BufWriter::with_capacity(WRITE_BUFFER, new));
                self.size += header.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&side);
                Err(e)
            }
        }
    }

    /// Discards the message and removes its file (what dropping does, but
    /// reporting a failure to remove).
    pub fn abort(mut self) -> io::Result<()> {
        self.file = None;
        self.stage = Stage::Removed;
        fs::remove_file(&self.tmp_path)
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // Close before unlinking (required on some platforms).
        self.file = None;
        // Errors are ignored: there is nobody left to report them to, and a
        // file that cannot be removed is in tmp/, never seen by readers.
        match self.stage {
            Stage::Writing => drop(fs::remove_file(&self.tmp_path)),
            Stage::Renamed => drop(fs::remove_file(&self.new_path)),
            Stage::Committed | Stage::Removed => {}
        }
    }
}

fn failed_earlier() -> io::Error {
    io::Error::other("the delivery failed earlier")
}

/// Creates `path` for writing, failing if it exists (`O_EXCL`); readable by
/// the owner only.
fn create_exclusive(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// `fsync` a directory, so a rename into it is durable. On platforms where a
/// directory cannot be opened as a file (Windows), renames are made durable
/// by the file system itself and there is nothing to do.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// This machine's name, for unique names; `localhost` if it is unknown.
fn system_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The Maildir convention escapes `/` as `\057` and `:` as `\072` (`:`
/// separates a file name from its flags in `cur/`). Anything that is not a
/// printable, non-space ASCII character is dropped, so a name is always a
/// safe file name and a safe word in a reply.
fn escape_host(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    for c in host.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            c if c.is_ascii_graphic() => out.push(c),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push_str("localhost");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::trace::{ProtocolBase, WithProtocol};
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::time::Duration;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn received(date: SystemTime) -> Received<'static> {
        Received::new(
            "client.example.org",
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            "mx.example.com",
            WithProtocol::new(ProtocolBase::Esmtp),
            date,
        )
    }

    #[test]
    fn open_creates_the_layout_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/maildir");
        let md = Maildir::open(&root).unwrap();
        assert_eq!(md.path(), root);
        for sub in ["tmp", "new", "cur"] {
            assert!(root.join(sub).is_dir());
        }
        Maildir::open(&root).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(root.join("new")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn old_tmp_leftovers_are_removed_at_open_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path()).unwrap();
        let tmp = dir.path().join("tmp");
        fs::write(tmp.join("old"), b"partial").unwrap();
        fs::write(tmp.join("fresh"), b"in progress").unwrap();
        let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
        File::options()
            .write(true)
            .open(tmp.join("old"))
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        drop(md);
        Maildir::open(dir.path()).unwrap();
        assert_eq!(names(&tmp), ["fresh"]);
        let md = Maildir::open(dir.path()).unwrap();
        let later = SystemTime::now() + TMP_MAX_AGE + Duration::from_secs(1);
        assert_eq!(md.clean_tmp(later, TMP_MAX_AGE).unwrap(), 1);
        assert!(names(&tmp).is_empty());
        assert!(names(&dir.path().join("new")).is_empty());
    }

    #[test]
    fn open_fails_when_a_subdirectory_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("new"), b"not a dir").unwrap();
        assert!(Maildir::open(dir.path()).is_err());
    }

    #[test]
    fn committed_message_is_byte_exact_with_trace_header() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path()).unwrap().with_hostname("mx");
        let date = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut d = md.begin(&received(date)).unwrap();
        let id = d.id().clone();
        // A body larger than the write buffer, in uneven chunks, with every
        // byte value.
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in body.chunks(777) {
            d.write(chunk).unwrap();
        }
        assert!(
            names(&dir.path().join("new")).is_empty(),
            "visible too early"
        );
        let committed = d.commit().unwrap();
        assert_eq!(committed, id);
        assert_eq!(names(&dir.path().join("new")), vec![id.to_string()]);
        assert!(names(&dir.path().join("tmp")).is_empty());
        let stored = fs::read(dir.path().join("new").join(id.as_str())).unwrap();
        let header = format!(
            "Received: from client.example.org ([192.0.2.7])\r\n\
             \tby mx.example.com with ESMTP id {id}\r\n\
             \t; Sun, 09 Sep 2001 01:46:40 +0000\r\n"
        );
        let (head, rest) = stored.split_at(header.len());
        assert_eq!(head, header.as_bytes());
        assert_eq!(rest, &body[..]);
    }

    #[test]
    fn given_id_is_kept_and_untraced_has_no_header() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path()).unwrap();
        let r = received(UNIX_EPOCH).with_id("QUEUE42");
        let d = md.begin(&r).unwrap();
        let size = d.size();
        let id = d.commit().unwrap();
        let stored = fs::read_to_string(dir.path().join("new").join(id.as_str())).unwrap();
        assert!(stored.contains(" id QUEUE42\r\n"));
        assert_eq!(stored.len() as u64, size);

        let mut d = md.begin_untraced().unwrap();
        d.write(b"Subject: x\r\n\r\nhi\r\n").unwrap();
        let id = d.commit().unwrap();
        let stored = fs::read(dir.path().join("new").join(id.as_str())).unwrap();
        assert_eq!(stored, b"Subject: x\r\n\r\nhi\r\n");
    }

    #[test]
    fn abort_and_drop_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path()).unwrap();
        let mut d = md.begin(&received(UNIX_EPOCH)).unwrap();
        d.write(b"partial").unwrap();
        assert_eq!(names(&dir.path().join("tmp")).len(), 1);
        d.abort().unwrap();
        assert!(names(&dir.path().join("tmp")).is_empty());

        {
            let mut d = md.begin(&received(UNIX_EPOCH)).unwrap();
            d.write(&[b'x'; 20_000]).unwrap();
        } // dropped: the client went away in the middle of DATA
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert!(names(&dir.path().join("new")).is_empty());
    }

    #[test]
    fn failed_rename_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path()).unwrap();
        let mut d = md.begin(&received(UNIX_EPOCH)).unwrap();
        d.write(b"body\r\n").unwrap();
        // Storage breaks between DATA and the final dot.
        fs::remove_dir(dir.path().join("new")).unwrap();
        assert!(d.commit().is_err());
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert!(!dir.path().join("new").exists());
    }

    #[test]
    fn failed_write_poisons_the_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path()).unwrap();
        let mut d = md.begin_untraced().unwrap();
        // Simulate a failed write by dropping the file as `write` does.
        d.file = None;
        assert!(d.write(b"x").is_err());
        assert!(d.commit().is_err());
        assert!(names(&dir.path().join("tmp")).is_empty());
        assert!(names(&dir.path().join("new")).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn write_error_is_reported_and_cleans_up() {
        // /dev/full fails every write with ENOSPC: a full disk.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path()).unwrap();
        let mut d = md.begin_untraced().unwrap();
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        d.file = Some(BufWriter::with_capacity(WRITE_BUFFER, full));
        let err = d.write(&[0u8; WRITE_BUFFER * 2]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28)); // ENOSPC
        assert!(d.commit().is_err());
        assert!(names(&dir.path().join("tmp")).is_empty());
    }

    #[test]
    fn names_are_unique_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let md = Arc::new(Maildir::open(dir.path()).unwrap().with_hostname("h"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let md = Arc::clone(&md);
                std::thread::spawn(move || {
                    (0..100)
                        .map(|i| {
                            let mut d = md.begin_untraced().unwrap();
                            d.write(format!("{t}/{i}").as_bytes()).unwrap();
                            d.commit().unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids = HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                assert!(ids.insert(id));
            }
        }
        assert_eq!(ids.len(), 800);
        assert_eq!(names(&dir.path().join("new")).len(), 800);
        // Every file holds what its writer wrote: no two writers shared one.
        let contents: HashSet<Vec<u8>> = ids
            .iter()
            .map(|id| fs::read(dir.path().join("new").join(id.as_str())).unwrap())
            .collect();
        assert_eq!(contents.len(), 800);
    }

    #[test]
    fn unique_name_shape_and_host_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::open(dir.path())
            .unwrap()
            .with_hostname("a/b:c d\n");
        let d = md.begin_untraced().unwrap();
        let name = d.id().as_str().to_owned();
        let (time, rest) = name.split_once('.').unwrap();
        assert!(time.parse::<u64>().is_ok());
        assert!(rest.starts_with('M'));
        assert!(rest.contains(&format!("P{}Q", std::process::id())));
        assert!(name.ends_with(".a\\057b\\072cd"), "{name}");
        assert_eq!(escape_host(" \t"), "localhost");
    }
}
