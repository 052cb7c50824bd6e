//! CRI container log files: writing them as a container's output arrives,
//! rotating them by size, and reading them back the way `kubectl logs`
//! shows them.
//!
//! The on-disk format is the one the kubelet and CRI runtimes share, one
//! record per line:
//!
//! ```text
//! 2026-11-22T05:46:24.123456789Z stdout F hello world
//! ```
//!
//! that is `<RFC 3339 timestamp> <stdout|stderr> <tag> <content>\n`. The
//! tag is `F` for the last (or only) piece of a line and `P` for a piece of
//! a line longer than [`MAX_LINE_SIZE`]; a reader joins `P` pieces with
//! the following pieces of the same stream up to the next `F`.
//!
//! This module owns the file format, size-based rotation and the one-shot
//! reader. It must not know about containers, pods or processes: callers
//! hand it bytes (from a pipe, a pty, …) and paths. All IO here is blocking;
//! async callers run it on a blocking thread. Following a log (`-f`) is the
//! caller's job; [`log_files`], [`parse_line`], [`LineAssembler`] and
//! [`format_entry`] are the pieces it needs.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::error::{Result, RuntimeError};

/// The longest piece of a line one record holds; longer lines are split
/// into `P` records of this size. 16 KiB, as containerd and CRI-O use.
pub const MAX_LINE_SIZE: usize = 16 * 1024;

/// Which of a container's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The word used in the file and in CRI's `stream` option.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stream {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Stream> {
        match s {
            "stdout" => Ok(Stream::Stdout),
            "stderr" => Ok(Stream::Stderr),
            other => Err(RuntimeError::invalid(format!(
                "unknown log stream {other:?}"
            ))),
        }
    }
}

/// Formats a timestamp as the files and `--timestamps` output carry it:
/// UTC with always nine fractional digits. Go's `RFC3339Nano` trims
/// trailing zeros instead; a fixed width keeps records the same length
/// and sorting as text, and every RFC 3339 parser accepts both.
pub fn format_timestamp(ts: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    // Formatting only fails for years outside 0..=9999, which a clock
    // reading or a parsed RFC 3339 value never has; fall back to the
    // general formatter rather than panic.
    let utc = ts.to_offset(UtcOffset::UTC);
    utc.format(&fmt)
        .or_else(|_| utc.format(&Rfc3339))
        .unwrap_or_default()
}

/// Writes one container's CRI log file, rotating it by size.
///
/// Output of each stream is buffered until a newline, so chunks of stdout
/// and stderr that arrive interleaved still give whole lines per stream.
/// At most [`MAX_LINE_SIZE`] bytes are held per stream: a longer line is
/// written as `P` pieces as soon as a full piece is available.
///
/// When a stream ends with an unterminated line, [`LogWriter::flush_partial`]
/// (or [`LogWriter::close`], or dropping the writer) writes it with tag `F`,
/// as containerd does: a reader then shows it followed by a newline. A `P`
/// would leave the reader waiting forever for the rest of a line that can
/// no longer come.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    /// Bytes in the current file, kept here rather than asked of the file
    /// system on each write.
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Unterminated output per stream, indexed by [`Stream::index`].
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (creating it and its parent directories if needed) the log
    /// file at `path` for appending.
    ///
    /// `max_size_bytes` is the size at which the file is rotated (0: never);
    /// `max_files` is how many files, the current one included, are kept
    /// (values below 1 count as 1: rotation then only discards).
    pub fn open(path: &Path, max_size_bytes: u64, max_files: u32) -> Result<LogWriter> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent)
                    .map_err(|e| RuntimeError::io(format!("create {}", parent.display()), e))?;
            }
        }
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|e| RuntimeError::io(format!("stat {}", path.display()), e))?
            .len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size_bytes,
            max_files: max_files.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// The path of the current (newest) log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `bytes` of output from `stream`: every complete line is
    /// written at once, an unterminated rest waits for more output.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        let idx = stream.index();
        // Take the buffer out so records can be written (which borrows
        // `self` mutably) while walking through it.
        let mut buf = std::mem::take(&mut self.pending[idx]);
        buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut result = Ok(());
        loop {
            let rest = &buf[start..];
            // A newline at index MAX_LINE_SIZE still ends a line that fits
            // in one record, hence the window of one more byte.
            let window = &rest[..rest.len().min(MAX_LINE_SIZE + 1)];
            let (piece, partial, consumed) = match window.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], false, i + 1),
                None if rest.len() > MAX_LINE_SIZE => (&rest[..MAX_LINE_SIZE], true, MAX_LINE_SIZE),
                None => break,
            };
            if let Err(e) = self.emit(stream, partial, piece) {
                result = Err(e);
                break;
            }
            start += consumed;
        }
        buf.drain(..start);
        self.pending[idx] = buf;
        result
    }

    /// Ends `stream`: an unterminated last line is written now (tag `F`).
    pub fn flush_partial(&mut self, stream: Stream) -> Result<()> {
        let idx = stream.index();
        if self.pending[idx].is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.pending[idx]);
        self.emit(stream, false, &buf)
    }

    /// Ends both streams and closes the file, reporting any error that
    /// dropping the writer would have to swallow.
    pub fn close(mut self) -> Result<()> {
        self.flush_partial(Stream::Stdout)?;
        self.flush_partial(Stream::Stderr)?;
        self.file
            .sync_data()
            .map_err(|e| RuntimeError::io(format!("sync {}", self.path.display()), e))
    }

    /// Writes one record, rotating first if it would not fit.
    fn emit(&mut self, stream: Stream, partial: bool, content: &[u8]) -> Result<()> {
        let ts = format_timestamp(OffsetDateTime::now_utc());
        let mut record = Vec::with_capacity(ts.len() + content.len() + 12);
        record.extend_from_slice(ts.as_bytes());
        record.push(b' ');
        record.extend_from_slice(stream.as_str().as_bytes());
        record.extend_from_slice(if partial { b" P " } else { b" F " });
        record.extend_from_slice(content);
        record.push(b'\n');

        let len = record.len() as u64;
        // An empty file takes any record, even one larger than the limit;
        // otherwise a single huge record would rotate forever.
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        // One write per record: O_APPEND makes it land whole at the end,
        // so a reader following the file never sees half a record mixed
        // with another.
        self.file
            .write_all(&record)
            .map_err(|e| RuntimeError::io(format!("write {}", self.path.display()), e))?;
        self.size += len;
        Ok(())
    }

    /// Renames the current file to `<name>.<timestamp>`, starts a new one
    /// and drops the oldest rotated files beyond `max_files`.
    fn rotate(&mut self) -> Result<()> {
        let mut when = OffsetDateTime::now_utc();
        let mut target = rotated_name(&self.path, when);
        // Names carry nanoseconds, so a clash needs two rotations within
        // the clock's resolution (or a clock stepping back); moving on by
        // a nanosecond keeps the names sorting in rotation order.
        while target.exists() {
            when += Duration::nanoseconds(1);
            target = rotated_name(&self.path, when);
        }
        fs::rename(&self.path, &target).map_err(|e| {
            RuntimeError::io(
                format!("rotate {} to {}", self.path.display(), target.display()),
                e,
            )
        })?;
        self.file = open_append(&self.path)?;
        self.size = 0;

        let keep = (self.max_files - 1) as usize;
        let rotated = rotated_files(&self.path)?;
        if rotated.len() > keep {
            for old in &rotated[..rotated.len() - keep] {
                match fs::remove_file(old) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RuntimeError::io(format!("remove {}", old.display()), e)),
                }
            }
        }
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        // Best effort: a writer dropped without `close` (its task ended,
        // the container died) should not lose the last unterminated line.
        let _ = self.flush_partial(Stream::Stdout);
        let _ = self.flush_partial(Stream::Stderr);
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| RuntimeError::io(format!("open {}", path.display()), e))
}

/// `<path>.<YYYYMMDD-HHMMSS.nnnnnnnnn>` in UTC: fixed width, so sorting
/// names sorts by age. The kubelet's own manager uses the same shape
/// without the fraction.
fn rotated_name(path: &Path, when: OffsetDateTime) -> PathBuf {
    let fmt = format_description!("[year][month][day]-[hour][minute][second].[subsecond digits:9]");
    let stamp = when
        .to_offset(UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| when.unix_timestamp_nanos().to_string());
    let mut name = path.as_os_str().to_os_string();
    name.push(".");
    name.push(stamp);
    PathBuf::from(name)
}

/// Whether `suffix` (what follows `<name>.`) is a rotation stamp, possibly
/// compressed: digits, `-` and `.` only, optionally ending in `.gz`. This
/// keeps temporary files (`.tmp`) and unrelated names out.
fn is_rotation_suffix(suffix: &str) -> bool {
    let stamp = suffix.strip_suffix(".gz").unwrap_or(suffix);
    stamp.starts_with(|c: char| c.is_ascii_digit())
        && stamp
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '.')
}

/// Rotated files of the log at `path` (compressed ones included), oldest
/// first. A missing directory has none.
fn rotated_files(path: &Path) -> Result<Vec<PathBuf>> {
    let (dir, name) = split_path(path)?;
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io(format!("list {}", dir.display()), e)),
    };
    let prefix = format!("{name}.");
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RuntimeError::io(format!("list {}", dir.display()), e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(suffix) = file_name.strip_prefix(&prefix) {
            if is_rotation_suffix(suffix) {
                found.push((
                    suffix.strip_suffix(".gz").unwrap_or(suffix).to_string(),
                    entry.path(),
                ));
            }
        }
    }
    // Sort by the stamp alone, so `x.gz` sits where `x` did.
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn split_path(path: &Path) -> Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| RuntimeError::invalid(format!("bad log path {}", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_string()))
}

/// The readable files holding the log at `path`, oldest first: the
/// uncompressed rotated files, then the current file if it exists.
/// Compressed (`.gz`) files are skipped: this crate does not decompress.
pub fn log_files(path: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = rotated_files(path)?
        .into_iter()
        .filter(|p| p.extension().is_none_or(|ext| ext != "gz"))
        .collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    Ok(files)
}

/// One record of a CRI log file, borrowing its content from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub timestamp: OffsetDateTime,
    pub stream: Stream,
    /// Tag `P`: more of this line follows in a later record.
    pub partial: bool,
    /// The content, without the record's terminating newline.
    pub content: &'a [u8],
}

/// Parses one record; a trailing `\n` (and `\r\n`'s `\r`, which no writer
/// produces but an editor might) is ignored.
///
/// Tags may carry extensions after a `:` (`F:x`), which are ignored, as
/// the CRI format allows.
pub fn parse_line(line: &[u8]) -> Result<LogLine<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let malformed = |why: &str| {
        let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        RuntimeError::invalid(format!("malformed CRI log line ({why}): {shown:?}"))
    };

    let (ts, rest) = split_field(line).ok_or_else(|| malformed("no stream"))?;
    let (stream, rest) = split_field(rest).ok_or_else(|| malformed("no tag"))?;
    // Content may be empty, in which case writers may or may not leave
    // the separating space.
    let (tag, content) = split_field(rest).unwrap_or((rest, &[][..]));

    let ts = std::str::from_utf8(ts).map_err(|_| malformed("timestamp not UTF-8"))?;
    let timestamp = OffsetDateTime::parse(ts, &Rfc3339).map_err(|_| malformed("bad timestamp"))?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return Err(malformed("bad stream")),
    };
    let main_tag = tag.split(|&b| b == b':').next().unwrap_or_default();
    let partial = match main_tag {
        b"F" => false,
        b"P" => true,
        _ => return Err(malformed("bad tag")),
    };
    Ok(LogLine {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// Splits at the first space: `(before, after)`, or `None` without one.
fn split_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b' ')?;
    Some((&s[..i], &s[i + 1..]))
}

/// A line of a container's output as a user sees it: `P` pieces joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The timestamp of the line's first piece.
    pub timestamp: OffsetDateTime,
    pub stream: Stream,
    /// Without the newline.
    pub content: Vec<u8>,
    /// False for a line whose end has not been written (yet).
    pub complete: bool,
}

/// Joins `P` pieces into whole lines, per stream, so that pieces of a long
/// stdout line interleaved with stderr lines still come out whole.
#[derive(Debug, Default)]
pub struct LineAssembler {
    pending: [Option<LogEntry>; 2],
}

impl LineAssembler {
    pub fn new() -> LineAssembler {
        LineAssembler::default()
    }

    /// Feeds one record; returns the line it completes, if any.
    pub fn push(&mut self, line: &LogLine<'_>) -> Option<LogEntry> {
        let slot = &mut self.pending[line.stream.index()];
        let entry = slot.get_or_insert_with(|| LogEntry {
            timestamp: line.timestamp,
            stream: line.stream,
            content: Vec::new(),
            complete: false,
        });
        entry.content.extend_from_slice(line.content);
        if line.partial {
            return None;
        }
        let mut done = slot.take()?;
        done.complete = true;
        Some(done)
    }

    /// Hands out the lines still waiting for their end, oldest first, each
    /// with `complete == false`; for a reader that has reached the end of
    /// the log and will not wait for more.
    pub fn take_pending(&mut self) -> Vec<LogEntry> {
        let mut out: Vec<LogEntry> = self.pending.iter_mut().filter_map(Option::take).collect();
        out.sort_by_key(|e| e.timestamp);
        out
    }
}

/// Appends `entry` to `out` as `kubectl logs` shows it: the content, a
/// newline if the line is complete, and with `timestamps` the line's
/// timestamp and a space in front.
pub fn format_entry(entry: &LogEntry, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        out.extend_from_slice(format_timestamp(entry.timestamp).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(&entry.content);
    if entry.complete {
        out.push(b'\n');
    }
}

/// What to read, as `kubectl logs` options (CRI's `LogOptions` plus the
/// pod log query's `sinceTime`, `limitBytes` and `timestamps`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last N lines (after the other filters).
    pub tail_lines: Option<u64>,
    /// Only lines whose first piece was written at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Cut the output after this many bytes, even mid-line.
    pub limit_bytes: Option<u64>,
    /// Prefix each line with its timestamp.
    pub timestamps: bool,
    /// Only this stream's lines.
    pub stream: Option<Stream>,
}

/// Reads the log at `path` (rotated files first) and renders it as
/// `kubectl logs` would show it.
///
/// Records that do not parse are skipped, as the kubelet does: one
/// damaged record (a torn write after a crash) should not hide the rest.
/// `tail_lines` counts whole lines after the stream and `since` filters,
/// not records. A line whose end is not in the file yet is shown without
/// a newline at the end. A log with no file at all is `NotFound`.
pub fn read_logs(path: &Path, opts: &LogOptions) -> Result<Vec<u8>> {
    read_logs_upto(path, opts, false).map(|(out, _)| out)
}

/// [`read_logs`] for a follower: stops before a record of the live file
/// (`path`) that is still being written and says how far it read, so the
/// follower continues from there and a line written while the history
/// was read is neither lost nor sent twice.
pub fn read_logs_with_offset(path: &Path, opts: &LogOptions) -> Result<(Vec<u8>, u64)> {
    read_logs_upto(path, opts, true)
}

fn read_logs_upto(path: &Path, opts: &LogOptions, stop_at_partial: bool) -> Result<(Vec<u8>, u64)> {
    let files = log_files(path)?;
    let mut live_offset = 0u64;
    let mut collector = Collector::new(opts);
    let mut assembler = LineAssembler::new();
    let mut read_any = false;
    let mut record = Vec::new();

    'files: for file in &files {
        let f = match File::open(file) {
            Ok(f) => f,
            // Rotated away or pruned since it was listed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(RuntimeError::io(format!("open {}", file.display()), e)),
        };
        read_any = true;
        let mut reader = BufReader::new(f);
        loop {
            record.clear();
            let n = reader
                .read_until(b'\n', &mut record)
                .map_err(|e| RuntimeError::io(format!("read {}", file.display()), e))?;
            if n == 0 {
                break;
            }
            let live = file.as_path() == path;
            if live {
                // A record still being written is the follower's to read.
                if stop_at_partial && !record.ends_with(b"\n") {
                    break;
                }
                live_offset += n as u64;
            }
            let Ok(line) = parse_line(&record) else {
                continue;
            };
            if opts.stream.is_some_and(|s| s != line.stream) {
                continue;
            }
            if let Some(entry) = assembler.push(&line) {
                if collector.accept(&entry) {
                    break 'files;
                }
            }
        }
    }
    if !read_any {
        return Err(RuntimeError::not_found(format!(
            "log file {}",
            path.display()
        )));
    }
    if !collector.full() {
        for entry in assembler.take_pending() {
            if collector.accept(&entry) {
                break;
            }
        }
    }
    Ok((collector.finish(), live_offset))
}

/// Gathers formatted lines for [`read_logs`], applying `since`, `tail`
/// and the byte limit.
struct Collector<'o> {
    opts: &'o LogOptions,
    out: Vec<u8>,
    /// With `tail_lines`, the last lines seen so far.
    tail: VecDeque<Vec<u8>>,
}

impl<'o> Collector<'o> {
    fn new(opts: &'o LogOptions) -> Collector<'o> {
        Collector {
            opts,
            out: Vec::new(),
            tail: VecDeque::new(),
        }
    }

    /// Whether the byte limit is reached, so reading can stop. Only
    /// without `tail`: with it, later lines may still push earlier out.
    fn full(&self) -> bool {
        self.opts.tail_lines.is_none()
            && self
                .opts
                .limit_bytes
                .is_some_and(|limit| self.out.len() as u64 >= limit)
    }

    /// Takes one line; returns true once no more are needed.
    fn accept(&mut self, entry: &LogEntry) -> bool {
        if self.opts.since.is_some_and(|since| entry.timestamp < since) {
            return false;
        }
        match self.opts.tail_lines {
            Some(0) => {}
            Some(n) => {
                let mut buf = Vec::new();
                format_entry(entry, self.opts.timestamps, &mut buf);
                if self.tail.len() as u64 == n {
                    self.tail.pop_front();
                }
                self.tail.push_back(buf);
            }
            None => format_entry(entry, self.opts.timestamps, &mut self.out),
        }
        self.full()
    }

    fn finish(mut self) -> Vec<u8> {
        for line in self.tail.drain(..) {
            self.out.extend_from_slice(&line);
        }
        if let Some(limit) = self.opts.limit_bytes {
            self.out
                .truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn read_all(path: &Path) -> Vec<u8> {
        read_logs(path, &LogOptions::default()).unwrap()
    }

    fn records(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn interleaved_streams_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pods/ns_pod_uid/ctr/0.log");
        let mut w = LogWriter::open(&path, 0, 5).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"err1\nerr").unwrap();
        w.write(Stream::Stdout, b"lo\nworld\n").unwrap();
        w.write(Stream::Stderr, b"2\n").unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        w.write(Stream::Stdout, b"no newline").unwrap();
        w.close().unwrap();

        let recs = records(&path);
        let shapes: Vec<String> = recs
            .iter()
            .map(|r| r.split_once(' ').unwrap().1.to_string())
            .collect();
        assert_eq!(
            shapes,
            [
                "stderr F err1",
                "stdout F hello",
                "stdout F world",
                "stderr F err2",
                "stdout F ",
                "stdout F no newline"
            ]
        );
        for r in &recs {
            let line = parse_line(r.as_bytes()).unwrap();
            assert_eq!(line.timestamp.offset(), UtcOffset::UTC);
            assert_eq!(
                r.split(' ').next().unwrap().len(),
                "2026-11-22T05:46:24.123456789Z".len()
            );
        }

        assert_eq!(read_all(&path), b"err1\nhello\nworld\nerr2\n\nno newline\n");
        let only_out = LogOptions {
            stream: Some(Stream::Stdout),
            ..Default::default()
        };
        assert_eq!(
            read_logs(&path, &only_out).unwrap(),
            b"hello\nworld\n\nno newline\n"
        );
        let only_err = LogOptions {
            stream: Some(Stream::Stderr),
            ..Default::default()
        };
        assert_eq!(read_logs(&path, &only_err).unwrap(), b"err1\nerr2\n");

        // Reopening appends.
        let mut w = LogWriter::open(&path, 0, 5).unwrap();
        w.write(Stream::Stdout, b"again\n").unwrap();
        drop(w);
        assert!(read_all(&path).ends_with(b"no newline\nagain\n"));
    }

    #[test]
    fn drop_writes_unterminated_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = LogWriter::open(&path, 0, 1).unwrap();
        w.write(Stream::Stderr, b"last words").unwrap();
        drop(w);
        assert_eq!(read_all(&path), b"last words\n");
    }

    #[test]
    fn long_line_split_and_joined() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let long: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let exact = vec![b'x'; MAX_LINE_SIZE];
        let mut w = LogWriter::open(&path, 0, 1).unwrap();
        // Fed in small chunks, with stderr lines in between.
        for (i, chunk) in long.chunks(1000).enumerate() {
            w.write(Stream::Stdout, chunk).unwrap();
            if i == 20 {
                w.write(Stream::Stderr, b"between\n").unwrap();
            }
        }
        w.write(Stream::Stdout, b"\n").unwrap();
        w.write(Stream::Stdout, &exact).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        w.close().unwrap();

        let recs = records(&path);
        let tags: Vec<(&str, &str, usize)> = recs
            .iter()
            .map(|r| {
                let mut it = r.splitn(4, ' ');
                it.next();
                (
                    it.next().unwrap(),
                    it.next().unwrap(),
                    it.next().unwrap().len(),
                )
            })
            .collect();
        assert_eq!(
            tags,
            [
                ("stdout", "P", MAX_LINE_SIZE),
                ("stderr", "F", 7),
                ("stdout", "P", MAX_LINE_SIZE),
                ("stdout", "F", 40_000 - 2 * MAX_LINE_SIZE),
                ("stdout", "F", MAX_LINE_SIZE),
            ]
        );

        let mut expected = b"between\n".to_vec();
        expected.extend_from_slice(&long);
        expected.push(b'\n');
        expected.extend_from_slice(&exact);
        expected.push(b'\n');
        assert_eq!(read_all(&path), expected);

        // With timestamps, the joined line carries its first piece's.
        let first = parse_line(recs[0].as_bytes()).unwrap().timestamp;
        let opts = LogOptions {
            timestamps: true,
            stream: Some(Stream::Stdout),
            tail_lines: Some(2),
            ..Default::default()
        };
        let out = read_logs(&path, &opts).unwrap();
        let prefix = format!("{} ", format_timestamp(first));
        assert!(out.starts_with(prefix.as_bytes()));
        assert_eq!(&out[prefix.len()..prefix.len() + long.len()], &long[..]);
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        fs::write(dir.path().join("0.log.tmp"), b"not a rotated log").unwrap();
        let mut w = LogWriter::open(&path, 1000, 3).unwrap();
        let lines: Vec<String> = (0..200).map(|i| format!("line number {i:04}")).collect();
        for l in &lines {
            w.write(Stream::Stdout, format!("{l}\n").as_bytes())
                .unwrap();
        }
        w.close().unwrap();

        let files = log_files(&path).unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files.last().unwrap(), &path);
        for f in &files {
            assert!(fs::metadata(f).unwrap().len() <= 1000);
        }
        // Only the three log files and the unrelated one remain.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);
        assert!(dir.path().join("0.log.tmp").exists());

        // What is left is the newest output, in order and without gaps.
        let out = String::from_utf8(read_all(&path)).unwrap();
        let got: Vec<&str> = out.lines().collect();
        assert!(got.len() > 20);
        assert_eq!(
            got,
            lines[lines.len() - got.len()..]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );

        // One file: rotation only discards.
        let single = dir.path().join("1.log");
        let mut w = LogWriter::open(&single, 200, 1).unwrap();
        for l in &lines[..50] {
            w.write(Stream::Stdout, format!("{l}\n").as_bytes())
                .unwrap();
        }
        drop(w);
        assert_eq!(log_files(&single).unwrap(), std::slice::from_ref(&single));
        assert!(read_all(&single).ends_with(b"line number 0049\n"));
    }

    /// A log with known timestamps, written by hand.
    fn crafted_log(dir: &Path) -> PathBuf {
        let path = dir.join("0.log");
        let rotated = dir.join("0.log.20260101-000000.000000000");
        fs::write(
            &rotated,
            "2026-01-01T00:00:01Z stdout F one\n\
             2026-01-01T00:00:02.5Z stderr F two\n",
        )
        .unwrap();
        fs::write(
            &path,
            "2026-01-01T00:00:03.000000001Z stdout P thr\n\
             garbage that is no record\n\
             2026-01-01T00:00:04+00:00 stderr F four\n\
             2026-01-01T01:00:05+01:00 stdout F ee\n\
             2026-01-01T00:00:06.000000000Z stdout F five\n\
             2026-01-01T00:00:07.000000000Z stdout P unfinis\n\
             2026-01-01T00:00:08.000000000Z stdout P hed",
        )
        .unwrap();
        path
    }

    #[test]
    fn tail_since_limit_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = crafted_log(dir.path());
        let read = |opts: LogOptions| String::from_utf8(read_logs(&path, &opts).unwrap()).unwrap();

        assert_eq!(
            read(LogOptions::default()),
            "one\ntwo\nfour\nthree\nfive\nunfinished"
        );
        assert_eq!(
            read(LogOptions {
                tail_lines: Some(2),
                ..Default::default()
            }),
            "five\nunfinished"
        );
        assert_eq!(
            read(LogOptions {
                tail_lines: Some(0),
                ..Default::default()
            }),
            ""
        );
        assert_eq!(
            read(LogOptions {
                tail_lines: Some(100),
                ..Default::default()
            }),
            "one\ntwo\nfour\nthree\nfive\nunfinished"
        );
        assert_eq!(
            read(LogOptions {
                tail_lines: Some(1),
                stream: Some(Stream::Stderr),
                ..Default::default()
            }),
            "four\n"
        );
        assert_eq!(
            read(LogOptions {
                since: Some(datetime!(2026-01-01 00:00:02.5 UTC)),
                ..Default::default()
            }),
            "two\nfour\nthree\nfive\nunfinished"
        );
        assert_eq!(
            read(LogOptions {
                since: Some(datetime!(2026-01-01 02:00:04 +02:00)),
                ..Default::default()
            }),
            "four\nfive\nunfinished"
        );
        assert_eq!(
            read(LogOptions {
                limit_bytes: Some(6),
                ..Default::default()
            }),
            "one\ntw"
        );
        assert_eq!(
            read(LogOptions {
                limit_bytes: Some(7),
                tail_lines: Some(2),
                ..Default::default()
            }),
            "five\nun"
        );
        assert_eq!(
            read(LogOptions {
                timestamps: true,
                tail_lines: Some(3),
                ..Default::default()
            }),
            "2026-01-01T00:00:03.000000001Z three\n\
             2026-01-01T00:00:06.000000000Z five\n\
             2026-01-01T00:00:07.000000000Z unfinished"
        );
    }

    #[test]
    fn missing_log_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_logs(&dir.path().join("nope.log"), &LogOptions::default()).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::NotFound);
    }

    #[test]
    fn parse_accepts_variants() {
        let l = parse_line(b"2016-10-06T00:17:09.669794202Z stdout F log content 1\n").unwrap();
        assert_eq!(l.timestamp, datetime!(2016-10-06 00:17:09.669794202 UTC));
        assert_eq!(l.stream, Stream::Stdout);
        assert!(!l.partial);
        assert_eq!(l.content, b"log content 1");

        let l = parse_line(b"2016-10-06T02:17:09.6+02:00 stderr P  two  spaces ").unwrap();
        assert_eq!(l.timestamp, datetime!(2016-10-06 00:17:09.6 UTC));
        assert!(l.partial);
        assert_eq!(l.content, b" two  spaces ");

        let l = parse_line(b"2016-10-06T00:17:09Z stdout F:x y").unwrap();
        assert!(!l.partial);
        assert_eq!(l.content, b"y");
        assert_eq!(
            parse_line(b"2016-10-06T00:17:09Z stdout F")
                .unwrap()
                .content,
            b""
        );
        assert_eq!(
            parse_line(b"2016-10-06T00:17:09Z stdout F ")
                .unwrap()
                .content,
            b""
        );
        // Content is bytes, not necessarily UTF-8.
        assert_eq!(
            parse_line(b"2016-10-06T00:17:09Z stdout F \xff\xfe")
                .unwrap()
                .content,
            b"\xff\xfe"
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        let bad: &[&[u8]] = &[
            b"",
            b"\n",
            b"garbage",
            b"2016-10-06T00:17:09Z",
            b"2016-10-06T00:17:09Z stdout",
            b"2016-10-06 stdout F x",
            b"2016-10-06T00:17:09Z stdin F x",
            b"2016-10-06T00:17:09Z stdout X x",
            b"2016-10-06T00:17:09Z stdout  x",
            b"\xff\xfe stdout F x",
            b"2016-13-06T00:17:09Z stdout F x",
            b" stdout F x",
        ];
        for line in bad {
            let err = parse_line(line).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidSpec, "{line:?}");
        }
    }

    #[test]
    fn assembler_keeps_streams_apart() {
        let mut a = LineAssembler::new();
        let t = datetime!(2026-01-01 0:00 UTC);
        let rec = |stream, partial, content: &'static [u8]| LogLine {
            timestamp: t,
            stream,
            partial,
            content,
        };
        assert_eq!(a.push(&rec(Stream::Stdout, true, b"ab")), None);
        let e = a.push(&rec(Stream::Stderr, false, b"err")).unwrap();
        assert_eq!(
            (e.stream, e.content.as_slice(), e.complete),
            (Stream::Stderr, &b"err"[..], true)
        );
        assert_eq!(a.push(&rec(Stream::Stderr, true, b"half")), None);
        let e = a.push(&rec(Stream::Stdout, false, b"cd")).unwrap();
        assert_eq!(e.content, b"abcd");
        let rest = a.take_pending();
        assert_eq!(rest.len(), 1);
        assert!(!rest[0].complete);
        let mut out = Vec::new();
        format_entry(&rest[0], false, &mut out);
        assert_eq!(out, b"half");
        assert!(a.take_pending().is_empty());
    }

    #[test]
    fn rotation_suffixes() {
        assert!(is_rotation_suffix("20260101-000000"));
        assert!(is_rotation_suffix("20260101-000000.123456789"));
        assert!(is_rotation_suffix("20260101-000000.gz"));
        assert!(!is_rotation_suffix("tmp"));
        assert!(!is_rotation_suffix("20260101-000000.tmp"));
        assert!(!is_rotation_suffix(""));
    }
}
