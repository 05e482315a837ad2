//! The common upstream exchange without hyper's client: a `GET` or `HEAD` without a body and
//! without an upgrade (most proxied requests) is written as one head in one write on a pooled
//! connection, and the response head is read with `httparse` into the connection's own buffer.
//! Everything else (a body, an upgrade, another method) goes through hyper's client, which stays
//! ([`super::pool`] chooses, with [`eligible`]).
//!
//! Why: hyper's client runs each connection as its own task, reached through a channel and a
//! oneshot per request; here the request's task writes and reads the socket itself, and the
//! response body reads the rest straight from it.
//!
//! Framing is checked as strictly as hyper's client checks it, or more (the differential target
//! `gateway::__fuzz::upstream_response` feeds the same bytes to both and asserts that whatever
//! this module accepts, hyper accepts too, with the same status, headers and body):
//! - interim `1xx` responses are skipped, a `101` is refused (nothing asked to switch);
//! - no body for `HEAD`, `204` and `304`;
//! - `Transfer-Encoding` must be exactly `chunked` (hyper also takes other codings, read to the
//!   close) and must not come with `Content-Length` (hyper lets `chunked` win) nor in an
//!   HTTP/1.0 response; chunk sizes are hex digits (at most 15), extensions may not hold a bare
//!   line feed, every chunk ends in CRLF;
//! - `Content-Length` values must all be the same digits (as hyper requires);
//! - otherwise the body runs to the close, and the connection is not reused.
//!
//! A connection goes back to the pool only when the body has been read to its end with nothing
//! after it, the response allowed keep-alive and nothing failed.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Body, BoxError};

/// The largest response head accepted (status line, headers and interim responses).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in one response head (hyper's default too).
const MAX_HEADERS: usize = 100;
/// How much room a read asks for: 8 KiB (as hyper), doubled while a body's reads fill it, up to
/// `MAX_READ_SIZE`. An idle pooled connection keeps its buffer, so the first size is also what
/// each one holds.
const READ_SIZE: usize = 8 * 1024;
const MAX_READ_SIZE: usize = 64 * 1024;
/// The longest chunk-size line (size and extensions).
const MAX_CHUNK_LINE: usize = 4096;
/// The most chunk-extension and trailer bytes, together, in one body, and the most trailer
/// lines. Below hyper's own limits (16 KiB of extensions, 16 KiB and 100 lines of trailers), so
/// that what this decoder accepts hyper's accepts too.
const MAX_CHUNK_META: usize = 8 * 1024;
const MAX_TRAILER_LINES: usize = 64;

/// Whether `req` takes this path: `GET` or `HEAD`, nothing in its body (known before reading
/// it), no upgrade, no transfer-coding, no non-zero `Content-Length`.
pub(crate) fn eligible(req: &Request<Body>) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD)
        && hyper::body::Body::is_end_stream(req.body())
        && !req.headers().contains_key(header::TRANSFER_ENCODING)
        && !req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .all(|v| v.as_bytes() == b"0")
}

/// Appends the request head, as hyper's client writes it: request line with the origin-form
/// target, each header as `name: value`, an empty line.
pub(crate) fn encode_head(req: &Request<Body>, out: &mut Vec<u8>) {
    out.reserve(64 + req.headers().len() * 32);
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// Nothing came back on a connection that had been idle: the upstream had closed it (or
    /// closed it on this request without answering). A `GET`/`HEAD` may be sent again.
    Stale(String),
    /// The exchange failed after the upstream started answering, or its answer was refused.
    Failed(String),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Stale(m) | ExchangeError::Failed(m) => f.write_str(m),
        }
    }
}

/// Where a finished connection goes (the pool; nowhere in tests and fuzzing).
pub(crate) trait Home<S>: Send + Sync + Unpin + 'static {
    /// Takes back a connection whose exchange ended cleanly.
    fn rehome(&self, conn: Conn<S>);
}

/// No pool: finished connections are closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoHome;

impl<S> Home<S> for NoHome {
    fn rehome(&self, _conn: Conn<S>) {}
}

/// One upstream connection with its read buffer.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    io: S,
    buf: BytesMut,
    /// The request head being written (kept: one allocation per connection, not per request).
    head: Vec<u8>,
    /// When it last finished an exchange (set by the pool, for its idle timeout).
    pub(crate) since: std::time::Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static> Conn<S> {
    /// A new connection over `io`.
    pub(crate) fn new(io: S) -> Self {
        Conn {
            io,
            buf: BytesMut::new(),
            head: Vec::new(),
            since: std::time::Instant::now(),
        }
    }

    /// Writes `req`'s head (see [`eligible`]) and reads the response head; the response body
    /// reads the rest from this connection, and gives it to `home` when it ends cleanly.
    pub(crate) async fn send<H: Home<S>>(
        mut self,
        req: &Request<Body>,
        home: H,
    ) -> Result<Response<Body>, ExchangeError> {
        self.head.clear();
        encode_head(req, &mut self.head);
        if let Err(e) = self.io.write_all(&self.head).await {
            return Err(ExchangeError::Stale(format!("writing the request: {e}")));
        }
        let head_request = req.method() == Method::HEAD;
        let mut received = false;
        loop {
            if !self.buf.is_empty() {
                received = true;
                if let Some(parsed) = parse_head(&mut self.buf, head_request)? {
                    let ParsedHead {
                        response,
                        framing,
                        keep_alive,
                    } = parsed;
                    let mut body = RawBody {
                        conn: Some(self),
                        framing,
                        keep_alive,
                        home: Some(home),
                        meta: 0,
                        read_size: READ_SIZE,
                    };
                    if body.framing.is_done() {
                        body.finish();
                    }
                    return Ok(response.map(|()| Body::new(body)));
                }
                if self.buf.len() >= MAX_HEAD {
                    return Err(ExchangeError::Failed(format!(
                        "response head larger than {MAX_HEAD} bytes"
                    )));
                }
            }
            self.buf.reserve(READ_SIZE);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) if !received => {
                    return Err(ExchangeError::Stale(
                        "upstream closed the connection without answering".into(),
                    ));
                }
                Ok(0) => {
                    return Err(ExchangeError::Failed(
                        "upstream closed the connection in the response head".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) if !received => {
                    return Err(ExchangeError::Stale(format!("reading the response: {e}")));
                }
                Err(e) => {
                    return Err(ExchangeError::Failed(format!("reading the response: {e}")));
                }
            }
        }
    }
}

impl Conn<tokio::net::TcpStream> {
    /// Whether an idle connection may carry a new exchange: the upstream has neither closed it
    /// nor sent anything since the last response ended (bytes nobody asked for would be read as
    /// the next request's response). One non-blocking read.
    pub(crate) fn is_quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes left (`0`: done).
    Length(u64),
    /// `Transfer-Encoding: chunked`, in this state.
    Chunked(Chunk),
    /// Until the upstream closes the connection.
    Close,
    /// Read to its end.
    Done,
}

impl Framing {
    fn is_done(&self) -> bool {
        matches!(self, Framing::Length(0) | Framing::Done)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines (checked, then dropped), then an empty line. Counts
    /// the lines.
    Trailers(usize),
}

struct ParsedHead {
    response: Response<()>,
    framing: Framing,
    keep_alive: bool,
}

/// Parses one response head from the front of `buf` (skipping interim responses), leaving the
/// body's first bytes in it. `None`: more bytes are needed.
fn parse_head(buf: &mut BytesMut, head_request: bool) -> Result<Option<ParsedHead>, ExchangeError> {
    let failed = |m: String| ExchangeError::Failed(m);
    loop {
        // Uninitialized, as hyper does: zeroing 100 header slots per response costs more than
        // parsing a typical head.
        let mut headers =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut headers) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(failed(format!("invalid response head: {e}"))),
        };
        let code = parsed.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| failed(format!("invalid status code {code}")))?;
        let version = if parsed.version == Some(1) {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let reason = parsed
            .reason
            .filter(|r| Some(*r) != status.canonical_reason())
            .map(|r| Bytes::copy_from_slice(r.as_bytes()));
        // Where each header's name and value lie in the head, to slice them from it once frozen.
        let base = buf.as_ptr() as usize;
        let mut spans: smallvec::SmallVec<[(usize, usize, usize, usize); 32]> =
            smallvec::SmallVec::new();
        for h in parsed.headers.iter() {
            let name = h.name.as_ptr() as usize - base;
            let value = h.value.as_ptr() as usize - base;
            spans.push((name, name + h.name.len(), value, value + h.value.len()));
        }
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(failed(
                    "upstream switched protocols without being asked".into(),
                ));
            }
            buf.advance(len);
            if buf.is_empty() {
                return Ok(None);
            }
            continue;
        }
        let head = buf.split_to(len).freeze();
        let mut map = HeaderMap::with_capacity(spans.len() + 4);
        let mut keep_alive = version == Version::HTTP_11;
        let mut saw_close = false;
        for (ns, ne, vs, ve) in spans {
            let name = HeaderName::from_bytes(&head[ns..ne])
                .map_err(|_| failed("invalid header name in the response".into()))?;
            let value = HeaderValue::from_maybe_shared(head.slice(vs..ve))
                .map_err(|_| failed("invalid header value in the response".into()))?;
            if name == header::CONNECTION {
                if saw_close || has_token(&value, "close") {
                    saw_close = true;
                    keep_alive = false;
                } else if !keep_alive {
                    keep_alive = has_token(&value, "keep-alive");
                }
            }
            map.append(name, value);
        }
        let framing = framing(status, head_request, version, &map)?;
        if framing == Framing::Close {
            keep_alive = false;
        }
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = map;
        if let Some(reason) = reason
            && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason)
        {
            response.extensions_mut().insert(reason);
        }
        return Ok(Some(ParsedHead {
            response,
            framing,
            keep_alive,
        }));
    }
}

fn framing(
    status: StatusCode,
    head_request: bool,
    version: Version,
    headers: &HeaderMap,
) -> Result<Framing, ExchangeError> {
    let failed = |m: &str| Err(ExchangeError::Failed(m.to_string()));
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Done);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return failed("Transfer-Encoding in an HTTP/1.0 response");
        }
        if headers.contains_key(header::CONTENT_LENGTH) {
            return failed("both Transfer-Encoding and Content-Length in the response");
        }
        let mut codings = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','));
        let only_chunked = codings
            .next()
            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            && codings.next().is_none();
        if !only_chunked {
            return failed("a transfer-coding other than chunked in the response");
        }
        return Ok(Framing::Chunked(Chunk::Size));
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = digits(part.trim_ascii()).ok_or_else(|| {
                ExchangeError::Failed("invalid Content-Length in the response".into())
            })?;
            if length.is_some_and(|l| l != n) {
                return failed("differing Content-Length values in the response");
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) if n > u64::MAX - 2 => return failed("Content-Length too large"),
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    })
}

/// A decimal number without sign or spaces, as hyper reads `Content-Length`.
fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then_some(())?;
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The response body: reads the rest of the response from the connection.
struct RawBody<S, H> {
    conn: Option<Conn<S>>,
    framing: Framing,
    keep_alive: bool,
    home: Option<H>,
    /// Chunk-extension and trailer bytes read so far (bounded by `MAX_CHUNK_META`).
    meta: usize,
    /// The room the next read asks for.
    read_size: usize,
}

impl<S, H: Home<S>> RawBody<S, H> {
    /// The body has been read to its end: the connection goes home if it can be reused.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        let (Some(conn), Some(home)) = (self.conn.take(), self.home.take()) else {
            return;
        };
        // Bytes after the end of the response: the upstream and we disagree on framing.
        if self.keep_alive && conn.buf.is_empty() {
            home.rehome(conn);
        }
    }

    fn fail(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        self.home = None;
        self.framing = Framing::Done;
        Poll::Ready(Some(Err(message.into())))
    }
}

/// What the body does next, decided from its framing and what is buffered.
enum Action {
    Yield(Bytes),
    End,
    Fill,
    Fail(String),
}

impl<S, H> hyper::body::Body for RawBody<S, H>
where
    S: AsyncRead + Unpin + Send + Sync + 'static,
    H: Home<S>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                // Finished or failed: the connection has gone (home or closed).
                this.framing = Framing::Done;
                return Poll::Ready(None);
            };
            let buf = &mut conn.buf;
            let action = match &mut this.framing {
                Framing::Done | Framing::Length(0) => Action::End,
                Framing::Length(left) if !buf.is_empty() => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= n as u64;
                    Action::Yield(buf.split_to(n).freeze())
                }
                Framing::Close if !buf.is_empty() => Action::Yield(buf.split().freeze()),
                Framing::Length(_) | Framing::Close => Action::Fill,
                Framing::Chunked(state) => match chunk_step(buf, *state, &mut this.meta) {
                    Ok(Step::Data(data, next)) => {
                        *state = next;
                        Action::Yield(data)
                    }
                    Ok(Step::Next(next)) => {
                        *state = next;
                        continue;
                    }
                    Ok(Step::End) => Action::End,
                    Ok(Step::More) => Action::Fill,
                    Err(message) => Action::Fail(message),
                },
            };
            match action {
                Action::Yield(data) => {
                    if this.framing.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Action::End => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Action::Fail(message) => return this.fail(message),
                Action::Fill => {
                    conn.buf.reserve(this.read_size);
                    let read =
                        tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf);
                    match ready!(read) {
                        Ok(0) => match this.framing {
                            Framing::Close => {
                                this.keep_alive = false;
                                this.finish();
                                return Poll::Ready(None);
                            }
                            Framing::Length(left) => {
                                return this.fail(format!(
                                    "upstream closed the connection with {left} bytes of the body unsent"
                                ));
                            }
                            _ => {
                                return this.fail(
                                    "upstream closed the connection inside a chunked body".into(),
                                );
                            }
                        },
                        Ok(n) => {
                            if n >= this.read_size {
                                this.read_size = (this.read_size * 2).min(MAX_READ_SIZE);
                            }
                        }
                        Err(e) => return this.fail(format!("reading the response body: {e}")),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// What one step of the chunked decoder found.
#[derive(Debug)]
enum Step {
    /// Chunk data, then this state.
    Data(Bytes, Chunk),
    /// Moved on without data.
    Next(Chunk),
    /// The last chunk and the trailers have been read.
    End,
    /// More bytes are needed.
    More,
}

/// One step of decoding a chunked body from the front of `buf`.
/// `meta` counts the extension and trailer bytes of the whole body.
fn chunk_step(buf: &mut BytesMut, state: Chunk, meta: &mut usize) -> Result<Step, String> {
    match state {
        Chunk::Size => {
            let Some(first) = buf.first() else {
                return Ok(Step::More);
            };
            // httparse takes an empty size (`;ext` or a bare CRLF) as 0: hyper does not.
            if !first.is_ascii_hexdigit() {
                return Err("invalid chunk size line".into());
            }
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((len, size))) => {
                    // A bare LF inside an extension: httparse skips it, hyper refuses it.
                    let line = &buf[..len - 2];
                    if line.contains(&b'\n') || len > MAX_CHUNK_LINE {
                        return Err("invalid chunk size line".into());
                    }
                    if let Some(at) = line.iter().position(|b| *b == b';') {
                        *meta += line.len() - at;
                        if *meta > MAX_CHUNK_META {
                            return Err("too many chunk extension bytes".into());
                        }
                    }
                    buf.advance(len);
                    Ok(Step::Next(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    }))
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                    Err("chunk size line too long".into())
                }
                Ok(httparse::Status::Partial) => Ok(Step::More),
                Err(_) => Err("invalid chunk size line".into()),
            }
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok(Step::More);
            }
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let data = buf.split_to(n).freeze();
            let left = left - n as u64;
            Ok(Step::Data(
                data,
                if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                },
            ))
        }
        Chunk::DataEnd => match buf.get(..2) {
            None if buf.first().is_none_or(|b| *b == b'\r') => Ok(Step::More),
            Some(b"\r\n") => {
                buf.advance(2);
                Ok(Step::Next(Chunk::Size))
            }
            _ => Err("chunk data not followed by CRLF".into()),
        },
        Chunk::Trailers(lines) => {
            // Each trailer line ends in CRLF; an empty line ends the body. Each line must be a
            // header field, as hyper's decoder requires; then it is dropped (hyper's server does
            // not send trailers to an HTTP/1.1 client that did not ask).
            let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                if *meta + buf.len() > MAX_CHUNK_META {
                    return Err("chunked trailers too large".into());
                }
                return Ok(Step::More);
            };
            if end == 0 {
                buf.advance(2);
                return Ok(Step::End);
            }
            *meta += end + 2;
            if *meta > MAX_CHUNK_META || lines >= MAX_TRAILER_LINES {
                return Err("chunked trailers too large".into());
            }
            if !is_header_field(&buf[..end]) {
                return Err("invalid chunked trailer".into());
            }
            buf.advance(end + 2);
            Ok(Step::Next(Chunk::Trailers(lines + 1)))
        }
    }
}

/// Whether `line` (without its CRLF) is one well-formed header field, by the parser hyper uses
/// for trailers. Trailers are rare: the copy is not on a hot path.
fn is_header_field(line: &[u8]) -> bool {
    if line.contains(&b'\n') || line.contains(&b'\r') {
        return false;
    }
    let mut block = Vec::with_capacity(line.len() + 4);
    block.extend_from_slice(line);
    block.extend_from_slice(b"\r\n\r\n");
    let mut fields = [httparse::EMPTY_HEADER; 1];
    match httparse::parse_headers(&block, &mut fields) {
        Ok(httparse::Status::Complete((_, [field]))) => {
            http::HeaderName::from_bytes(field.name.as_bytes()).is_ok()
                && http::HeaderValue::from_bytes(field.value).is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(mut input: &[u8], split: usize) -> Result<Vec<u8>, String> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut state = Chunk::Size;
        let mut meta = 0;
        loop {
            match chunk_step(&mut buf, state, &mut meta)? {
                Step::Data(d, next) => {
                    out.extend_from_slice(&d);
                    state = next;
                }
                Step::Next(next) => state = next,
                Step::End => return Ok(out),
                Step::More => {
                    if input.is_empty() {
                        return Err("eof".into());
                    }
                    let n = split.min(input.len());
                    buf.extend_from_slice(&input[..n]);
                    input = &input[n..];
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let body = b"5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 1..body.len() {
            assert_eq!(
                decode_all(body, split).as_deref(),
                Ok(&b"hello 0123456789"[..]),
                "split {split}"
            );
        }
    }

    #[test]
    fn chunked_framing_doubts_are_refused() {
        for bad in [
            &b"\r\nhello\r\n0\r\n\r\n"[..], // empty size: httparse alone reads 0
            b";x\r\n0\r\n\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n", // bare LF in an extension
            b"5\r\nhelloXX0\r\n\r\n",        // data not followed by CRLF
            b"5\nhello\r\n0\r\n\r\n",        // bare LF after the size
            b"fffffffffffffffff\r\n",        // 17 hex digits
            b"-5\r\n",
            b"0x5\r\n",
            b"5\r\nhello\r\n0\r\nno colon\r\n\r\n", // a trailer that is not a field
            b"5\r\nhello\r\n0\r\nbad name: 1\r\n\r\n",
            b"5\r\nhello\r\n0\r\n folded: 1\r\n\r\n",
            b"5\r\nhello\r\n0\r\nx: a\x01b\r\n\r\n",
        ] {
            assert!(
                decode_all(bad, bad.len()).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunk_extensions_and_trailers_are_bounded_below_hypers_limits() {
        let trailers = |n: usize| {
            let mut b = b"5\r\nhello\r\n0\r\n".to_vec();
            for i in 0..n {
                b.extend_from_slice(format!("t{i}: v\r\n").as_bytes());
            }
            b.extend_from_slice(b"\r\n");
            b
        };
        assert_eq!(
            decode_all(&trailers(MAX_TRAILER_LINES), 7).as_deref(),
            Ok(&b"hello"[..])
        );
        assert!(decode_all(&trailers(MAX_TRAILER_LINES + 1), 7).is_err());
        let extensions = |n: usize| {
            let mut b = Vec::new();
            for _ in 0..n {
                b.extend_from_slice(format!("1;{}\r\nx\r\n", "e".repeat(1000)).as_bytes());
            }
            b.extend_from_slice(b"0\r\n\r\n");
            b
        };
        assert_eq!(decode_all(&extensions(8), 100).map(|b| b.len()), Ok(8));
        assert!(decode_all(&extensions(9), 100).is_err());
    }

    fn head(text: &str, head_request: bool) -> Result<Option<(u16, Framing, bool)>, String> {
        let mut buf = BytesMut::from(text.as_bytes());
        parse_head(&mut buf, head_request)
            .map(|p| p.map(|p| (p.response.status().as_u16(), p.framing, p.keep_alive)))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn response_framing_follows_the_rules_or_is_refused() {
        let ok = |t: &str| head(t, false).unwrap().unwrap();
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            (200, Framing::Length(5), true)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\n"),
            (200, Framing::Length(5), true)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (200, Framing::Chunked(Chunk::Size), true)
        );
        assert_eq!(ok("HTTP/1.1 200 OK\r\n\r\n"), (200, Framing::Close, false));
        assert_eq!(
            ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"),
            (204, Framing::Done, false)
        );
        assert_eq!(
            ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"),
            (200, Framing::Length(0), true)
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
                .unwrap()
                .unwrap(),
            (200, Framing::Done, true)
        );
        assert_eq!(head("HTTP/1.1 200 OK\r\nContent-Le", false), Ok(None));
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "HTTP/1.1 200 OK\r\nFoo : bar\r\n\r\n",
            "HTTP/1.1 200 OK\r\nFoo: bar\r\n  folded\r\n\r\n",
        ] {
            assert!(head(bad, false).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_head_is_written_as_hyper_writes_it() {
        let req = Request::builder()
            .method(Method::GET)
            .uri("/a/b?c=d")
            .header("host", "up.test")
            .header("x-remote-user", "alice")
            .header("accept", "*/*")
            .body(super::super::error::full_body(""))
            .unwrap();
        assert!(eligible(&req));
        let mut out = Vec::new();
        encode_head(&req, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a/b?c=d HTTP/1.1\r\nhost: up.test\r\nx-remote-user: alice\r\naccept: */*\r\n\r\n"
        );
        let post = Request::builder()
            .method(Method::POST)
            .uri("/")
            .body(super::super::error::full_body(""))
            .unwrap();
        assert!(!eligible(&post), "only GET and HEAD");
        let with_body = Request::builder()
            .uri("/")
            .body(super::super::error::full_body("x"))
            .unwrap();
        assert!(!eligible(&with_body), "a body goes through hyper");
    }
}
