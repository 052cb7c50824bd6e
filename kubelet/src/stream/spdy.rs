//! Server side of a SPDY/3.1 session, just enough for `portforward.k8s.io`
//! as spoken by kubectl (moby/spdystream on the client side).
//!
//! [`serve`] takes ownership of an already-upgraded byte stream (raw after
//! `Upgrade: SPDY/3.1`, or WebSocket messages adapted by the caller) and runs
//! one background task that owns the IO, the two zlib header contexts (one per
//! direction, for the whole session) and the only writer, so frames never
//! interleave. Streams opened by the peer come out of the returned receiver,
//! already answered with an empty SYN_REPLY.
//!
//! It must not: know anything about ports, pods or HTTP; open streams or send
//! PINGs of its own; implement SPDY/3.1 flow control (WINDOW_UPDATE is
//! accepted and ignored, never sent, as the Go kubelet does); or buffer
//! without bound. The buffering trade-off is described on [`STALL_TIMEOUT`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::mpsc::{self, OwnedPermit};
use tokio::task::JoinHandle;

const VERSION: u32 = 3;
const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const ID_MASK: u32 = 0x7fff_ffff;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

const PROTOCOL_ERROR: u32 = 1;
const INVALID_STREAM: u32 = 2;
const REFUSED_STREAM: u32 = 3;
const CANCEL: u32 = 5;
const STREAM_ALREADY_CLOSED: u32 = 9;

/// Largest data frame we emit; matches the 32 KiB chunks Go's `io.Copy` uses.
const MAX_DATA_FRAME: usize = 32 * 1024;
/// Cap on one inflated header block, so a tiny frame cannot inflate into gigabytes.
const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// Frames buffered per stream for a reader that has not caught up yet.
const STREAM_BUFFER: usize = 64;
/// How long the session waits on one stream whose buffer is full.
///
/// TCP is ordered, so while a data frame cannot be delivered nothing behind it
/// (PINGs, other streams) can be read either. Buffering without bound would
/// let one slow consumer eat memory; dropping data silently would corrupt the
/// stream. So the session waits at most this long, then resets that one
/// stream (RST_STREAM CANCEL; its reader gets `ConnectionReset`) and moves on.
/// PING answers are therefore late by at most this much.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_QUEUE: usize = 64;
const CONTROL_QUEUE: usize = 32;
const ACCEPT_QUEUE: usize = 16;
const WRITE_BATCH: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// The zlib dictionary every SPDY/3 header context starts from, as given in
/// section 2.6.10.1 of the SPDY Protocol Draft 3: length-prefixed header
/// names and common values, then a run of bare status/date/MIME text.
const DICTIONARY: &[u8] = b"\
\0\0\0\x07options\0\0\0\x04head\0\0\0\x04post\0\0\0\x03put\0\0\0\x06delete\0\0\0\x05trace\
\0\0\0\x06accept\0\0\0\x0eaccept-charset\0\0\0\x0faccept-encoding\0\0\0\x0faccept-language\
\0\0\0\x0daccept-ranges\0\0\0\x03age\0\0\0\x05allow\0\0\0\x0dauthorization\
\0\0\0\x0dcache-control\0\0\0\x0aconnection\0\0\0\x0ccontent-base\0\0\0\x10content-encoding\
\0\0\0\x10content-language\0\0\0\x0econtent-length\0\0\0\x10content-location\
\0\0\0\x0bcontent-md5\0\0\0\x0dcontent-range\0\0\0\x0ccontent-type\0\0\0\x04date\
\0\0\0\x04etag\0\0\0\x06expect\0\0\0\x07expires\0\0\0\x04from\0\0\0\x04host\
\0\0\0\x08if-match\0\0\0\x11if-modified-since\0\0\0\x0dif-none-match\0\0\0\x08if-range\
\0\0\0\x13if-unmodified-since\0\0\0\x0dlast-modified\0\0\0\x08location\
\0\0\0\x0cmax-forwards\0\0\0\x06pragma\0\0\0\x12proxy-authenticate\
\0\0\0\x13proxy-authorization\0\0\0\x05range\0\0\0\x07referer\0\0\0\x0bretry-after\
\0\0\0\x06server\0\0\0\x02te\0\0\0\x07trailer\0\0\0\x11transfer-encoding\0\0\0\x07upgrade\
\0\0\0\x0auser-agent\0\0\0\x04vary\0\0\0\x03via\0\0\0\x07warning\0\0\0\x10www-authenticate\
\0\0\0\x06method\0\0\0\x03get\0\0\0\x06status\0\0\0\x06200 OK\0\0\0\x07version\
\0\0\0\x08HTTP/1.1\0\0\0\x03url\0\0\0\x06public\0\0\0\x0aset-cookie\0\0\0\x0akeep-alive\
\0\0\0\x06origin\
100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request\
401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented\
503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 \
Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,\
application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=\
gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// Why a session ended other than by a clean EOF or GOAWAY.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spdy transport: {0}")]
    Io(#[from] io::Error),
    #[error("spdy protocol violation: {0}")]
    Protocol(&'static str),
    #[error("spdy header compression: {0}")]
    Compression(String),
}

fn compression(e: impl std::fmt::Display) -> Error {
    Error::Compression(e.to_string())
}

/// One frame, with header blocks still compressed: (de)compression needs the
/// session's contexts and must happen in wire order, so it is done elsewhere.
/// Priority and associated stream id mean nothing to port-forward and are not
/// kept; fields are (stream id, flags or FIN, payload) in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Data(u32, bool, Bytes),
    SynStream(u32, u8, Bytes),
    SynReply(u32, bool, Bytes),
    RstStream(u32, u32),
    Ping(u32),
    /// Last good stream id, status.
    GoAway(u32, u32),
    Headers(u32, bool, Bytes),
    WindowUpdate(u32, u32),
    /// SETTINGS and any type we have no use for; its payload is skipped.
    Other(u16),
}

fn put_control(out: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    out.put_u32(0x8000_0000 | (VERSION << 16) | u32::from(kind));
    out.put_u32((u32::from(flags) << 24) | len as u32);
}

impl Frame {
    /// Takes one whole frame off the front of `buf`, or `None` until one has arrived.
    fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            buf.reserve(8 + len - buf.len());
            return Ok(None);
        }
        let mut head = buf.split_to(8);
        let mut p = buf.split_to(len).freeze();
        let word = head.get_u32();
        let flags = head[0];
        let fin = flags & FLAG_FIN != 0;
        if word & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data(word, fin, p)));
        }
        if (word >> 16) & 0x7fff != VERSION {
            return Err(Error::Protocol("unsupported SPDY version"));
        }
        let kind = word as u16;
        let min = match kind {
            SYN_STREAM => 10,
            RST_STREAM | WINDOW_UPDATE => 8,
            SYN_REPLY | PING | GOAWAY | HEADERS => 4,
            _ => 0,
        };
        if p.len() < min {
            return Err(Error::Protocol("control frame too short"));
        }
        let id = if min >= 4 { p.get_u32() } else { 0 };
        Ok(Some(match kind {
            SYN_STREAM => {
                p.advance(6); // associated stream id, priority, credential slot
                Frame::SynStream(id & ID_MASK, flags, p)
            }
            SYN_REPLY => Frame::SynReply(id & ID_MASK, fin, p),
            RST_STREAM => Frame::RstStream(id & ID_MASK, p.get_u32()),
            PING => Frame::Ping(id),
            // SPDY/2 peers send no status word.
            GOAWAY => Frame::GoAway(id & ID_MASK, if p.len() >= 4 { p.get_u32() } else { 0 }),
            HEADERS => Frame::Headers(id & ID_MASK, fin, p),
            WINDOW_UPDATE => Frame::WindowUpdate(id & ID_MASK, p.get_u32() & ID_MASK),
            kind => Frame::Other(kind),
        }))
    }

    fn encode(&self, out: &mut BytesMut) {
        // FLAG_FIN is bit 0, so a bool converts straight into the flags byte.
        match self {
            Frame::Data(id, fin, data) => {
                debug_assert!(data.len() <= 0x00ff_ffff);
                out.put_u32(id & ID_MASK);
                out.put_u32((u32::from(*fin) << 24) | data.len() as u32);
                out.put_slice(data);
            }
            Frame::SynStream(id, flags, block) => {
                put_control(out, SYN_STREAM, *flags, 10 + block.len());
                out.put_u32(*id);
                out.put_slice(&[0; 6]);
                out.put_slice(block);
            }
            Frame::SynReply(id, fin, block) | Frame::Headers(id, fin, block) => {
                let kind = if matches!(self, Frame::SynReply(..)) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                put_control(out, kind, u8::from(*fin), 4 + block.len());
                out.put_u32(*id);
                out.put_slice(block);
            }
            Frame::Ping(id) => {
                put_control(out, PING, 0, 4);
                out.put_u32(*id);
            }
            Frame::RstStream(id, word)
            | Frame::GoAway(id, word)
            | Frame::WindowUpdate(id, word) => {
                let kind = match self {
                    Frame::RstStream(..) => RST_STREAM,
                    Frame::GoAway(..) => GOAWAY,
                    _ => WINDOW_UPDATE,
                };
                put_control(out, kind, 0, 8);
                out.put_u32(*id);
                out.put_u32(*word);
            }
            Frame::Other(kind) => put_control(out, *kind, 0, 0),
        }
    }
}

/// Outgoing header context; one per session direction, never reset.
struct HeaderEncoder(Compress);

impl HeaderEncoder {
    fn new() -> Result<Self, Error> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(DICTIONARY).map_err(compression)?;
        Ok(Self(z))
    }

    fn encode(&mut self, headers: &[(String, String)]) -> Result<Bytes, Error> {
        // SPDY forbids repeated names; repeats travel as one NUL-joined value.
        let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
        for (name, value) in headers {
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => grouped.push((name, vec![value])),
            }
        }
        let mut raw = BytesMut::new();
        raw.put_u32(grouped.len() as u32);
        for (name, values) in grouped {
            let value = values.join("\0");
            raw.put_u32(name.len() as u32);
            raw.put_slice(name.as_bytes());
            raw.put_u32(value.len() as u32);
            raw.put_slice(value.as_bytes());
        }
        let mut input = &raw[..];
        let mut out = Vec::with_capacity(raw.len() + 64);
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.0.total_in();
            self.0
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(compression)?;
            input = &input[(self.0.total_in() - before) as usize..];
            // A sync flush is complete once zlib stops short of filling the buffer.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out.into());
            }
        }
    }
}

/// Incoming header context; one per session direction, never reset.
struct HeaderDecoder(Decompress);

impl HeaderDecoder {
    fn new() -> Self {
        Self(Decompress::new(true))
    }

    fn decode(&mut self, mut input: &[u8]) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::with_capacity(256);
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(compression("header block too large"));
                }
                out.reserve(out.len());
            }
            let (before_in, before_out) = (self.0.total_in(), out.len());
            let res = self
                .0
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.0.total_in() - before_in) as usize;
            input = &input[used..];
            match res {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                // zlib reads the stream header, then asks for the dictionary it names.
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0.set_dictionary(DICTIONARY).map_err(compression)?;
                    continue;
                }
                Err(e) => return Err(compression(e)),
            }
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && out.len() == before_out {
                return Err(compression("header block does not inflate"));
            }
        }
        parse_block(&out)
    }
}

fn parse_block(mut raw: &[u8]) -> Result<Vec<(String, String)>, Error> {
    const BAD: Error = Error::Protocol("malformed header block");
    fn take<'a>(raw: &mut &'a [u8]) -> Result<&'a [u8], Error> {
        if raw.len() < 4 {
            return Err(BAD);
        }
        let len = raw.get_u32() as usize;
        if raw.len() < len {
            return Err(BAD);
        }
        let (field, rest) = raw.split_at(len);
        *raw = rest;
        Ok(field)
    }
    if raw.len() < 4 {
        return Err(BAD);
    }
    let count = raw.get_u32();
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = String::from_utf8_lossy(take(&mut raw)?).to_ascii_lowercase();
        if name.is_empty() {
            return Err(BAD);
        }
        for value in take(&mut raw)?.split(|b| *b == 0) {
            headers.push((name.clone(), String::from_utf8_lossy(value).into_owned()));
        }
    }
    Ok(headers)
}

/// What the writer task is asked to put on the wire.
enum Out {
    Frame(Frame),
    /// An empty SYN_REPLY; compressed by the writer so contexts follow wire order.
    Reply(u32),
}

/// State one stream's halves share with the session.
#[derive(Default)]
struct Shared {
    fin_sent: AtomicBool,
    /// Either side reset the stream: no more writes.
    reset: AtomicBool,
    /// Reset on our side (by the caller or a stall): reads fail instead of EOF.
    aborted: AtomicBool,
    read_waker: AtomicWaker,
}

impl Shared {
    fn abort(&self) -> bool {
        let first = !self.reset.swap(true, SeqCst);
        self.aborted.store(true, SeqCst);
        self.read_waker.wake();
        first
    }

    fn done(&self) -> bool {
        self.fin_sent.load(SeqCst) || self.reset.load(SeqCst)
    }
}

/// Owns the connection's background task; dropping it tears the connection down.
pub struct Session {
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl Session {
    /// Waits until the connection ends: `Ok` on EOF or GOAWAY, else why it failed.
    pub async fn join(mut self) -> Result<(), Error> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let res = task.await;
        self.task = None;
        res.unwrap_or_else(|e| Err(Error::Io(io::Error::other(e))))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts a server-side session over `io`. Each stream the peer opens is
/// answered with an empty SYN_REPLY and then handed out on the receiver, which
/// closes when the session ends. Drain it promptly: while it is full, the
/// connection is not read.
pub fn serve<IO>(io: IO) -> (Session, mpsc::Receiver<Stream>)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (accept, incoming) = mpsc::channel(ACCEPT_QUEUE);
    let (ordered, ordered_rx) = mpsc::channel(WRITE_QUEUE);
    let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (rd, wr) = tokio::io::split(io);
    let headers = HeaderDecoder::new();
    let reader = Reader {
        headers,
        streams: HashMap::new(),
        accept,
        ordered,
        control,
        last_id: 0,
    };
    // One task for both directions: whichever ends first takes the other with it,
    // which drops every stream's channel so readers see EOF and writers fail.
    let task = tokio::spawn(async move {
        tokio::select! {
            r = reader.run(rd) => r,
            r = write_loop(wr, ordered_rx, control_rx) => r,
        }
    });
    (Session { task: Some(task) }, incoming)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut ordered: mpsc::Receiver<Out>,
    mut control: mpsc::Receiver<Out>,
) -> Result<(), Error> {
    let mut headers = HeaderEncoder::new()?;
    let mut buf = BytesMut::with_capacity(WRITE_BATCH);
    loop {
        // PING answers jump ahead of queued data; stream frames keep their order.
        let mut next = tokio::select! {
            biased;
            Some(out) = control.recv() => out,
            Some(out) = ordered.recv() => out,
            else => return Ok(()),
        };
        loop {
            match next {
                Out::Frame(frame) => frame.encode(&mut buf),
                Out::Reply(id) => Frame::SynReply(id, false, headers.encode(&[])?).encode(&mut buf),
            }
            // Coalesce whatever is already queued into one write.
            if buf.len() >= WRITE_BATCH {
                break;
            }
            match control.try_recv().or_else(|_| ordered.try_recv()) {
                Ok(out) => next = out,
                Err(_) => break,
            }
        }
        wr.write_all(&buf).await?;
        wr.flush().await?;
        buf.clear();
    }
}

struct Inbound {
    /// `None` once the peer half-closed.
    tx: Option<mpsc::Sender<Bytes>>,
    shared: Arc<Shared>,
}

struct Reader {
    headers: HeaderDecoder,
    streams: HashMap<u32, Inbound>,
    accept: mpsc::Sender<Stream>,
    /// Frames about one stream (SYN_REPLY, data, FIN, RST) share this queue so
    /// a stream's reply always precedes its data.
    ordered: mpsc::Sender<Out>,
    control: mpsc::Sender<Out>,
    last_id: u32,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(mut self, mut rd: R) -> Result<(), Error> {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            while let Some(frame) = Frame::decode(&mut buf)? {
                if !self.handle(frame).await? {
                    return Ok(());
                }
            }
            buf.reserve(READ_CHUNK);
            if rd.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Returns `false` when the session should end.
    async fn handle(&mut self, frame: Frame) -> Result<bool, Error> {
        match frame {
            Frame::Data(id, fin, data) => self.on_data(id, fin, data).await,
            Frame::SynStream(id, flags, block) => {
                let headers = self.headers.decode(&block)?;
                self.on_syn(id, flags, headers).await;
            }
            // Never expected, but every block must be inflated to keep zlib in step.
            Frame::SynReply(_, _, block) => drop(self.headers.decode(&block)?),
            Frame::Headers(id, fin, block) => {
                self.headers.decode(&block)?;
                if let (true, Some(s)) = (fin, self.streams.get_mut(&id)) {
                    s.tx = None;
                }
            }
            Frame::RstStream(id, _) => {
                if let Some(s) = self.streams.remove(&id) {
                    // Set before the sender drops, so a reader seeing EOF also sees writes fail.
                    s.shared.reset.store(true, SeqCst);
                }
            }
            // Even ids are server-initiated; we never ping, so the spec says ignore them.
            Frame::Ping(id) if !id.is_multiple_of(2) => {
                let _ = self.control.send(Out::Frame(Frame::Ping(id))).await;
            }
            Frame::GoAway(..) => return Ok(false),
            Frame::Ping(_) | Frame::WindowUpdate(..) | Frame::Other(_) => {}
        }
        Ok(true)
    }

    async fn refuse(&self, id: u32, status: u32) {
        let _ = self
            .control
            .send(Out::Frame(Frame::RstStream(id, status)))
            .await;
    }

    async fn on_syn(&mut self, id: u32, flags: u8, headers: Vec<(String, String)>) {
        if id == 0 || id.is_multiple_of(2) || id <= self.last_id {
            return self.refuse(id, PROTOCOL_ERROR).await;
        }
        self.last_id = id;
        self.streams
            .retain(|_, s| s.tx.is_some() || !s.shared.done());
        let Ok(permit) = self.accept.reserve().await else {
            return self.refuse(id, REFUSED_STREAM).await;
        };
        let shared = Arc::new(Shared::default());
        if flags & FLAG_UNIDIRECTIONAL != 0 {
            // The peer expects neither a reply nor data on this one.
            shared.fin_sent.store(true, SeqCst);
        } else if self.ordered.send(Out::Reply(id)).await.is_err() {
            return;
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let tx = (flags & FLAG_FIN == 0).then_some(tx);
        self.streams.insert(
            id,
            Inbound {
                tx,
                shared: shared.clone(),
            },
        );
        let reader = StreamReader {
            rx,
            chunk: Bytes::new(),
            shared: shared.clone(),
        };
        let writer = StreamWriter {
            id,
            tx: self.ordered.clone(),
            reserve: None,
            shared,
        };
        permit.send(Stream {
            id,
            headers,
            reader,
            writer,
        });
    }

    async fn on_data(&mut self, id: u32, fin: bool, data: Bytes) {
        let Some(entry) = self.streams.get_mut(&id) else {
            return self.refuse(id, INVALID_STREAM).await;
        };
        if entry.shared.reset.load(SeqCst) {
            self.streams.remove(&id);
            return;
        }
        let Some(tx) = entry.tx.clone() else {
            return self.refuse(id, STREAM_ALREADY_CLOSED).await;
        };
        if fin {
            entry.tx = None;
        }
        if data.is_empty() {
            return;
        }
        // A reader that dropped its half no longer cares; its data is discarded.
        let Err(TrySendError::Full(data)) = tx.try_send(data) else {
            return;
        };
        if tokio::time::timeout(STALL_TIMEOUT, tx.send(data))
            .await
            .is_err()
        {
            if let Some(s) = self.streams.remove(&id) {
                s.shared.abort();
            }
            let _ = self
                .ordered
                .send(Out::Frame(Frame::RstStream(id, CANCEL)))
                .await;
        }
    }
}

/// A stream the peer opened. Reading yields its data until the peer's FIN or
/// RST_STREAM (then EOF); writing sends data frames and `shutdown` sends FIN.
pub struct Stream {
    pub id: u32,
    /// Lower-cased names; a multi-valued header appears once per value.
    pub headers: Vec<(String, String)>,
    reader: StreamReader,
    writer: StreamWriter,
}

impl Stream {
    /// The first value of header `name` (names are matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    /// Separates the halves so both directions can be copied concurrently.
    pub fn split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    /// Aborts the stream with RST_STREAM (CANCEL).
    pub fn reset(&self) {
        self.writer.reset();
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context,
        buf: &mut ReadBuf,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}

/// Receiving half of a [`Stream`].
pub struct StreamReader {
    rx: mpsc::Receiver<Bytes>,
    chunk: Bytes,
    shared: Arc<Shared>,
}

impl AsyncRead for StreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context,
        buf: &mut ReadBuf,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Registered before the check so an abort racing with us still wakes us.
            this.shared.read_waker.register(cx.waker());
            if this.shared.aborted.load(SeqCst) {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if !this.chunk.is_empty() {
                let n = this.chunk.len().min(buf.remaining());
                buf.put_slice(&this.chunk.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match ready!(this.rx.poll_recv(cx)) {
                Some(chunk) => this.chunk = chunk,
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

type Reserve = Pin<Box<dyn Future<Output = Result<OwnedPermit<Out>, SendError<()>>> + Send>>;

fn closed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("spdy {what} closed"))
}

/// Sending half of a [`Stream`]. `poll_flush` only means "queued for the
/// session's writer"; dropping it without `shutdown` still sends FIN.
pub struct StreamWriter {
    id: u32,
    tx: mpsc::Sender<Out>,
    reserve: Option<Reserve>,
    shared: Arc<Shared>,
}

impl StreamWriter {
    /// Aborts the stream with RST_STREAM (CANCEL); later reads and writes fail.
    pub fn reset(&self) {
        if self.shared.abort() {
            self.send_detached(Frame::RstStream(self.id, CANCEL));
        }
    }

    /// Queues from a sync context; if the queue is full, a task finishes the job
    /// (still behind this stream's earlier frames, as the queue is FIFO).
    fn send_detached(&self, frame: Frame) {
        if let Err(TrySendError::Full(out)) = self.tx.try_send(Out::Frame(frame)) {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let tx = self.tx.clone();
                rt.spawn(async move { tx.send(out).await });
            }
        }
    }

    fn check_open(&self) -> io::Result<()> {
        match (
            self.shared.reset.load(SeqCst),
            self.shared.fin_sent.load(SeqCst),
        ) {
            (true, _) => Err(io::ErrorKind::ConnectionReset.into()),
            (_, true) => Err(closed("stream")),
            _ => Ok(()),
        }
    }

    fn poll_permit(&mut self, cx: &mut Context) -> Poll<io::Result<OwnedPermit<Out>>> {
        let tx = &self.tx;
        let fut = self
            .reserve
            .get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        let res = ready!(fut.as_mut().poll(cx));
        self.reserve = None;
        Poll::Ready(res.map_err(|_| closed("session")))
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_open()?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let permit = ready!(this.poll_permit(cx))?;
        // The stream may have been reset while we waited for room.
        this.check_open()?;
        let n = buf.len().min(MAX_DATA_FRAME);
        let data = Bytes::copy_from_slice(&buf[..n]);
        permit.send(Out::Frame(Frame::Data(this.id, false, data)));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.done() {
            return Poll::Ready(Ok(()));
        }
        let permit = ready!(this.poll_permit(cx))?;
        if !this.shared.fin_sent.swap(true, SeqCst) {
            permit.send(Out::Frame(Frame::Data(this.id, true, Bytes::new())));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        // kubectl waits for both streams of a pair to close; never leave one hanging.
        if !self.shared.reset.load(SeqCst) && !self.shared.fin_sent.swap(true, SeqCst) {
            self.send_detached(Frame::Data(self.id, true, Bytes::new()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, DuplexStream};

    fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn data(id: u32, fin: bool, bytes: &'static [u8]) -> Frame {
        Frame::Data(id, fin, Bytes::from_static(bytes))
    }

    #[test]
    fn dictionary_matches_spec_layout() {
        assert_eq!(DICTIONARY.len(), 1423);
        let (mut rest, mut words) = (DICTIONARY, Vec::new());
        while words.last().map(String::as_str) != Some("origin") {
            let len = rest.get_u32() as usize;
            assert!(len > 0 && len < 32, "bad length prefix after {words:?}");
            words.push(String::from_utf8(rest[..len].to_vec()).unwrap());
            rest = &rest[len..];
        }
        assert_eq!(
            (words.len(), &words[..2]),
            (65, &["options".into(), "head".into()][..])
        );
        assert!(rest.starts_with(b"100101201") && rest.ends_with(b",enq=0."));
    }

    #[test]
    fn frames_round_trip() {
        let frames = vec![
            data(5, false, b"hello"),
            data(0x7fff_ffff, true, b""),
            Frame::SynStream(
                1,
                FLAG_FIN | FLAG_UNIDIRECTIONAL,
                Bytes::from_static(b"\x01\x02"),
            ),
            Frame::SynReply(3, true, Bytes::from_static(b"zz")),
            Frame::RstStream(3, CANCEL),
            Frame::Ping(0xffff_ffff),
            Frame::GoAway(9, 1),
            Frame::Headers(7, false, Bytes::from_static(b"h")),
            Frame::WindowUpdate(1, 65536),
            Frame::Other(4),
        ];
        let mut wire = BytesMut::new();
        frames.iter().for_each(|f| f.encode(&mut wire));
        // Frames arrive in arbitrary pieces; none decodes before it is complete.
        let (mut rx, mut decoded) = (BytesMut::new(), Vec::new());
        for piece in wire.chunks(3) {
            rx.extend_from_slice(piece);
            while let Some(f) = Frame::decode(&mut rx).unwrap() {
                decoded.push(f);
            }
        }
        assert_eq!(decoded, frames);
        assert!(rx.is_empty());
    }

    #[test]
    fn unknown_control_payload_is_skipped() {
        let mut buf = BytesMut::new();
        put_control(&mut buf, 4, 0, 12); // SETTINGS with one entry
        buf.put_slice(&[0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0]);
        put_control(&mut buf, 42, 0, 2);
        buf.put_slice(b"??");
        Frame::Ping(1).encode(&mut buf);
        for want in [Frame::Other(4), Frame::Other(42), Frame::Ping(1)] {
            assert_eq!(Frame::decode(&mut buf).unwrap(), Some(want));
        }
        let mut v2 = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(Frame::decode(&mut v2), Err(Error::Protocol(_))));
    }

    #[test]
    fn header_blocks_share_one_context() {
        let mut enc = HeaderEncoder::new().unwrap();
        let mut dec = HeaderDecoder::new();
        let first = owned(&[
            ("streamtype", "error"),
            ("port", "8080"),
            ("requestid", "0"),
        ]);
        let second = owned(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]);
        let multi = owned(&[("accept", "a"), ("x", ""), ("accept", "b")]);
        let blocks: Vec<Bytes> = [&first, &second, &multi, &vec![]]
            .map(|h| enc.encode(h).unwrap())
            .into();
        // Only the first block carries the zlib header, naming the dictionary by
        // its Adler-32, the id every SPDY/3 peer (Go's zlib included) checks.
        assert_eq!((blocks[0][0] & 0x0f, blocks[0][1] & 0x20), (8, 0x20));
        assert_eq!(blocks[0][2..6], 0xe3c6_a7c2_u32.to_be_bytes());
        assert!(
            blocks[1].len() < blocks[0].len(),
            "second block should reuse history"
        );
        assert_eq!(dec.decode(&blocks[0]).unwrap(), first);
        assert_eq!(dec.decode(&blocks[1]).unwrap(), second);
        let want = owned(&[("accept", "a"), ("accept", "b"), ("x", "")]);
        assert_eq!(dec.decode(&blocks[2]).unwrap(), want);
        assert_eq!(dec.decode(&blocks[3]).unwrap(), vec![]);
        // A fresh decoder cannot read a later block: the context really is shared.
        assert!(HeaderDecoder::new().decode(&blocks[1]).is_err());
    }

    /// A minimal peer with its own compression contexts, like spdystream.
    struct Client {
        io: DuplexStream,
        buf: BytesMut,
        enc: HeaderEncoder,
        dec: HeaderDecoder,
    }

    impl Client {
        fn new(io: DuplexStream) -> Self {
            let (enc, dec) = (HeaderEncoder::new().unwrap(), HeaderDecoder::new());
            Client {
                io,
                buf: BytesMut::new(),
                enc,
                dec,
            }
        }

        async fn send(&mut self, frame: Frame) {
            let mut b = BytesMut::new();
            frame.encode(&mut b);
            self.io.write_all(&b).await.unwrap();
        }

        async fn open(&mut self, id: u32, headers: &[(&str, &str)]) {
            let block = self.enc.encode(&owned(headers)).unwrap();
            self.send(Frame::SynStream(id, 0, block)).await;
        }

        async fn next(&mut self) -> Option<Frame> {
            let read = async {
                loop {
                    if let Some(f) = Frame::decode(&mut self.buf).unwrap() {
                        return Some(f);
                    }
                    if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                        return None;
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .expect("peer stalled")
        }
    }

    // Multi-threaded so the reply-before-data ordering is checked under real races.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn port_forward_pair_echo() {
        let (client_io, server_io) = duplex(64 * 1024);
        let (session, mut incoming) = serve(server_io);
        let server = tokio::spawn(async move {
            let mut handlers = Vec::new();
            while let Some(stream) = incoming.recv().await {
                assert_eq!(
                    (stream.header("port"), stream.header("RequestID")),
                    (Some("8080"), Some("0"))
                );
                let is_data = stream.header("streamtype") == Some("data");
                handlers.push(tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    if is_data {
                        tokio::io::copy(&mut r, &mut w).await.unwrap();
                    } else {
                        r.read_to_end(&mut Vec::new()).await.unwrap();
                        w.write_all(b"no error").await.unwrap();
                    }
                    w.shutdown().await.unwrap();
                }));
            }
            for h in handlers {
                h.await.unwrap();
            }
        });

        let mut c = Client::new(client_io);
        let pair = |kind| [("streamtype", kind), ("port", "8080"), ("requestid", "0")];
        c.open(1, &pair("error")).await;
        c.send(data(1, true, b"")).await;
        c.open(3, &pair("data")).await;
        c.send(Frame::Ping(1)).await;
        c.send(Frame::Ping(2)).await; // even: ours to answer, never the server's
        c.send(Frame::WindowUpdate(3, 1024)).await;
        // Enough to need several frames and reads on the way back.
        let payload: Vec<u8> = (0..192 * 1024).map(|i| (i % 251) as u8).collect();
        for chunk in payload.chunks(16 * 1024) {
            c.send(Frame::Data(3, false, Bytes::copy_from_slice(chunk)))
                .await;
        }
        c.send(data(3, true, b"")).await;

        let (mut replied, mut fins, mut pings) = (Vec::new(), Vec::new(), Vec::new());
        let (mut echoed, mut error_text) = (Vec::new(), Vec::new());
        while fins.len() < 2 {
            match c.next().await.expect("connection closed early") {
                Frame::SynReply(id, false, block) => {
                    assert!(c.dec.decode(&block).unwrap().is_empty());
                    replied.push(id);
                }
                Frame::Ping(id) => pings.push(id),
                Frame::Data(id, fin, data) => {
                    assert!(replied.contains(&id), "data on {id} before its SYN_REPLY");
                    let sink = if id == 3 {
                        &mut echoed
                    } else {
                        &mut error_text
                    };
                    sink.extend_from_slice(&data);
                    if fin {
                        fins.push(id);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        replied.sort();
        fins.sort();
        assert_eq!((replied, fins, pings), (vec![1, 3], vec![1, 3], vec![1]));
        assert!(echoed == payload, "echo differs");
        assert_eq!(error_text, b"no error");

        c.send(Frame::GoAway(0, 0)).await;
        server.await.unwrap(); // returns once the receiver has closed
        session.join().await.unwrap();
    }

    #[tokio::test]
    async fn reset_and_eof_end_streams() {
        let (client_io, server_io) = duplex(64 * 1024);
        let (_session, mut incoming) = serve(server_io);
        let mut c = Client::new(client_io);
        c.open(1, &[("streamtype", "data")]).await;
        c.open(3, &[("streamtype", "data")]).await;
        let (mut reset, mut cut) = (
            incoming.recv().await.unwrap(),
            incoming.recv().await.unwrap(),
        );
        c.send(Frame::RstStream(1, CANCEL)).await;
        let mut rest = Vec::new();
        reset.read_to_end(&mut rest).await.unwrap();
        let err = reset.write_all(b"late").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);

        // A data frame for a stream that never existed is refused.
        c.send(data(9, false, b"x")).await;
        loop {
            match c.next().await.unwrap() {
                Frame::RstStream(9, status) => break assert_eq!(status, INVALID_STREAM),
                Frame::SynReply(_, _, block) => drop(c.dec.decode(&block).unwrap()),
                other => panic!("unexpected {other:?}"),
            }
        }

        drop(c); // the transport ends, and every stream with it
        cut.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty() && incoming.recv().await.is_none());
        let err = cut.write_all(b"late").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
