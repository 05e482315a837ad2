//! A raw HTTP/2 client for the attack suites: frames and HPACK blocks are encoded by hand
//! (literal-without-indexing, plain strings), so a test can send what a well-behaved library
//! refuses to (duplicate or misplaced pseudo-headers, upper-case or invalid names, connection
//! headers, split header blocks, floods). Responses are decoded with `loona-hpack`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY: u8 = 0x20;

/// Error codes (RFC 9113 §7).
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame: `kind`, `flags`, `stream` and the payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24, "frame payload too long");
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix, `high` holding the bits above the prefix.
fn integer(out: &mut Vec<u8>, n: u8, high: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 7, 0, s.len());
    out.extend_from_slice(s);
}

/// A header block: every field a literal without indexing with a new (literal) name, strings
/// plain. Names and values are sent exactly as given.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    block_bytes(
        &fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect::<Vec<_>>(),
    )
}

/// As [`block`], for names or values that are not UTF-8 (NUL, high bytes).
pub fn block_bytes(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        string(&mut out, name);
        string(&mut out, value);
    }
    out
}

/// A GET for `path` on `authority` with `extra` fields after the pseudo-headers.
pub fn get<'a>(
    authority: &'a str,
    path: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", authority),
        (":path", path),
    ];
    v.extend_from_slice(extra);
    v
}

/// A received frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// How a stream ended for the client.
#[derive(Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response (lower-case header names, in order; pseudo-headers excluded).
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `RST_STREAM` with this error code.
    Reset(u32),
    /// `GOAWAY` with this error code.
    GoAway(u32),
    /// The connection closed.
    Closed,
    /// Nothing conclusive before the deadline.
    Timeout,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Response {
                status,
                headers,
                body,
            } => {
                let text = String::from_utf8_lossy(body);
                let short: String = text.chars().take(120).collect();
                write!(
                    f,
                    "Response {{ status: {status}, headers: {headers:?}, body ({} bytes): {short:?} }}",
                    body.len()
                )
            }
            Outcome::Reset(code) => write!(f, "Reset({code:#x})"),
            Outcome::GoAway(code) => write!(f, "GoAway({code:#x})"),
            Outcome::Closed => write!(f, "Closed"),
            Outcome::Timeout => write!(f, "Timeout"),
        }
    }
}

impl Outcome {
    /// The status of a response, 0 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Response { status, .. } => *status,
            _ => 0,
        }
    }

    /// Whether the stream or the connection was refused (reset, GOAWAY, or closed).
    pub fn refused(&self) -> bool {
        matches!(
            self,
            Outcome::Reset(_) | Outcome::GoAway(_) | Outcome::Closed
        )
    }

    /// A refusal, or a response with a 4xx status: the request was not accepted.
    pub fn rejected(&self) -> bool {
        self.refused() || (400..500).contains(&self.status())
    }

    /// The response body as text.
    pub fn text(&self) -> String {
        match self {
            Outcome::Response { body, .. } => String::from_utf8_lossy(body).into_owned(),
            _ => String::new(),
        }
    }

    /// The first value of response header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            Outcome::Response { headers, .. } => headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

/// A decoded header list: (name, value) pairs as received.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// An HTTP/2 connection with prior knowledge (h2c) over raw TCP.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    decoder: loona_hpack::Decoder<'static>,
    /// Header blocks decoded so far, by stream (for streams not being waited on).
    pending: Vec<(u32, Fields, bool)>,
    /// Every GOAWAY seen: (last stream id, error code).
    pub goaways: Vec<(u32, u32)>,
    /// The server's SETTINGS parameters, in order received.
    pub settings: Vec<(u16, u32)>,
}

impl Conn {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        let mut c = Conn {
            stream,
            buf: Vec::new(),
            decoder: loona_hpack::Decoder::new(),
            pending: Vec::new(),
            goaways: Vec::new(),
            settings: Vec::new(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        c.send(&hello).await;
        c
    }

    /// Writes `bytes` (errors ignored: the server may already have closed).
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends a complete request (HEADERS with END_STREAM and END_HEADERS) on `id`.
    pub async fn send_request(&mut self, id: u32, fields: &[(&str, &str)]) {
        self.send(&frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            id,
            &block(fields),
        ))
        .await;
    }

    /// Sends `fields` on `id` and waits for how the stream ends.
    pub async fn request(&mut self, id: u32, fields: &[(&str, &str)]) -> Outcome {
        self.send_request(id, fields).await;
        self.outcome(id, Duration::from_secs(5)).await
    }

    /// The next frame, `None` on EOF, error or when `deadline` passes.
    pub async fn read_frame(&mut self, deadline: Instant) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes([
                            self.buf[5],
                            self.buf[6],
                            self.buf[7],
                            self.buf[8],
                        ]) & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    return Some(f);
                }
            }
            let mut chunk = [0u8; 16384];
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Handles connection-level frames (acks SETTINGS and PING, records GOAWAY); returns the
    /// frame when the caller should look at it.
    async fn housekeeping(&mut self, f: Frame) -> Option<Frame> {
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => {
                for p in f.payload.chunks_exact(6) {
                    self.settings.push((
                        u16::from_be_bytes([p[0], p[1]]),
                        u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                    ));
                }
                self.send(&frame(SETTINGS, ACK, 0, &[])).await;
                None
            }
            PING if f.flags & ACK == 0 => {
                self.send(&frame(PING, ACK, 0, &f.payload)).await;
                None
            }
            GOAWAY => {
                let p = &f.payload;
                if p.len() >= 8 {
                    self.goaways.push((
                        u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
                        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                    ));
                }
                Some(f)
            }
            SETTINGS | PING | WINDOW_UPDATE => None,
            _ => Some(f),
        }
    }

    /// Reads a header block starting with `first` (HEADERS), following CONTINUATION frames.
    async fn header_block(&mut self, first: Frame, deadline: Instant) -> Option<(Fields, bool)> {
        let end_stream = first.flags & END_STREAM != 0;
        let mut p: &[u8] = &first.payload;
        let mut pad = 0;
        if first.flags & PADDED != 0 {
            pad = *p.first()? as usize;
            p = &p[1..];
        }
        if first.flags & PRIORITY != 0 {
            p = p.get(5..)?;
        }
        let mut fragment = p.get(..p.len().checked_sub(pad)?)?.to_vec();
        let mut flags = first.flags;
        while flags & END_HEADERS == 0 {
            let f = self.read_frame(deadline).await?;
            if f.kind != CONTINUATION {
                return None;
            }
            fragment.extend_from_slice(&f.payload);
            flags = f.flags;
        }
        let fields = self.decoder.decode(&fragment).ok()?;
        Some((fields, end_stream))
    }

    /// Waits for stream `id` to end (response complete, reset, GOAWAY or close).
    pub async fn outcome(&mut self, id: u32, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        let mut head: Option<Fields> = None;
        let mut body = Vec::new();
        if let Some(i) = self.pending.iter().position(|(s, _, _)| *s == id) {
            let (_, fields, end) = self.pending.remove(i);
            if end {
                return response(fields, body);
            }
            head = Some(fields);
        }
        loop {
            let Some(f) = self.read_frame(deadline).await else {
                return if Instant::now() >= deadline {
                    Outcome::Timeout
                } else {
                    Outcome::Closed
                };
            };
            let Some(f) = self.housekeeping(f).await else {
                continue;
            };
            match f.kind {
                GOAWAY => {
                    let (last, code) = *self.goaways.last().unwrap_or(&(0, 0));
                    // A graceful GOAWAY covering our stream: the stream still completes.
                    if code != 0 || last < id {
                        return Outcome::GoAway(code);
                    }
                }
                HEADERS => {
                    let stream = f.stream;
                    let Some((fields, end)) = self.header_block(f, deadline).await else {
                        return Outcome::Closed;
                    };
                    if stream != id {
                        self.pending.push((stream, fields, end));
                        continue;
                    }
                    match head.take() {
                        // Informational heads (1xx) are skipped; trailers end the stream.
                        None if status_of(&fields).is_some_and(|s| s < 200) => {}
                        None => head = Some(fields),
                        Some(h) => {
                            head = Some(h);
                        }
                    }
                    if end {
                        return response(head.unwrap_or_default(), body);
                    }
                }
                DATA if f.stream == id => {
                    let mut p: &[u8] = &f.payload;
                    if f.flags & PADDED != 0 && !p.is_empty() {
                        let pad = p[0] as usize;
                        p = &p[1..p.len().saturating_sub(pad).max(1)];
                    }
                    body.extend_from_slice(p);
                    if f.flags & END_STREAM != 0 {
                        return response(head.unwrap_or_default(), body);
                    }
                }
                RST_STREAM if f.stream == id => {
                    let code = f
                        .payload
                        .get(..4)
                        .map_or(0, |p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                    return Outcome::Reset(code);
                }
                _ => {}
            }
        }
    }

    /// Opens stream `id` with an extended-CONNECT style request without END_STREAM and returns
    /// once its response head arrives: (status, headers), or the outcome that ended it.
    pub async fn open_stream(&mut self, id: u32, fields: &[(&str, &str)]) -> Result<u16, Outcome> {
        self.send(&frame(HEADERS, END_HEADERS, id, &block(fields)))
            .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let Some(f) = self.read_frame(deadline).await else {
                return Err(Outcome::Closed);
            };
            let Some(f) = self.housekeeping(f).await else {
                continue;
            };
            match f.kind {
                HEADERS if f.stream == id => {
                    let Some((fields, _)) = self.header_block(f, deadline).await else {
                        return Err(Outcome::Closed);
                    };
                    return Ok(status_of(&fields).unwrap_or(0));
                }
                RST_STREAM if f.stream == id => {
                    let code = u32::from_be_bytes(f.payload[..4].try_into().unwrap());
                    return Err(Outcome::Reset(code));
                }
                GOAWAY => return Err(Outcome::GoAway(self.goaways.last().unwrap().1)),
                _ => {}
            }
        }
    }

    /// Whether the server closes the connection (EOF) or sends GOAWAY before `timeout`,
    /// reading (and acknowledging) whatever else arrives meanwhile.
    pub async fn closes_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(f) = self.read_frame(deadline).await else {
                return Instant::now() < deadline;
            };
            if let Some(f) = self.housekeeping(f).await
                && f.kind == GOAWAY
            {
                return true;
            }
        }
    }
}

fn status_of(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<u16> {
    fields
        .iter()
        .find(|(n, _)| n == b":status")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
}

fn response(fields: Vec<(Vec<u8>, Vec<u8>)>, body: Vec<u8>) -> Outcome {
    let status = status_of(&fields).unwrap_or(0);
    let headers = fields
        .into_iter()
        .filter(|(n, _)| !n.starts_with(b":"))
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(&n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    Outcome::Response {
        status,
        headers,
        body,
    }
}
