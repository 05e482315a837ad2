//! The client side's HTTP/1.1 fast path (issue 16, item 1): the common request is read,
//! served and answered here, without hyper's server state machine; anything unusual goes to
//! hyper's server, which stays the reference.
//!
//! Contract:
//! - a connection starts here; each request head is read into the connection's buffer and
//!   parsed with `httparse` under hyper's own parser settings (`ParserConfig::default()`, at
//!   most 100 headers, the same `max_buf_size`);
//! - this path serves only an HTTP/1.1 request in origin form (`/...`) with no body and nothing
//!   to negotiate: not `CONNECT`, and none of `Content-Length`, `Transfer-Encoding`, `Expect`,
//!   `Upgrade`, `TE`, `Trailer`, `HTTP2-Settings`. Every other connection, from its first
//!   unusual byte on (an HTTP/2 preface, HTTP/1.0, a body, an upgrade, a head over the buffer,
//!   any parse error or doubt), is handed to hyper's server with the bytes read so far put back
//!   in front of the stream ([`Rewind`]), and stays there;
//! - what the phases see is what hyper's server would have given them: the same method, target,
//!   version and headers in order, and an ended body (the differential fuzz target
//!   `client_request` feeds the same bytes to both and compares);
//! - the response head is written as hyper's server writes it ([`encode_head`]: status line and
//!   reason, lower-case headers in order, `content-length` or `transfer-encoding: chunked` by
//!   the same rules, `connection: close` when the connection ends, a cached `date`), head and
//!   small bodies in one write;
//! - keep-alive as hyper: a request with `Connection: close`, a response with it, a listener
//!   shutting down, or a body that failed ends the connection after the response;
//! - the connection's watchdog (`server.header_read_timeout`) closes it once nothing has been
//!   open on it that long, whether it is idle between requests or still reading a head;
//!   a listener shutdown closes it at once between requests.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::request::{Body, ConnInfo, boxed, empty_body};
use crate::state::Gateway;

/// hyper's `DEFAULT_MAX_HEADERS`: a head with more goes to hyper, which refuses it.
const MAX_HEADERS: usize = 100;
/// hyper's `MAX_URI_LEN`.
const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;
/// Free space made in the read buffer before each read.
const READ_SPACE: usize = 4096;
/// Body bytes gathered behind a response head before they are written.
const WRITE_GATHER: usize = 8192;

/// What the bytes read so far hold.
// Returned once per request and moved out at once: boxing the request would cost an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Head {
    /// Not a whole head yet.
    Partial,
    /// A request this path serves, taken off the buffer; `keep_alive` is false when it asked
    /// to close the connection.
    Fast { req: Request<()>, keep_alive: bool },
    /// Anything else: hyper's server takes the connection with the buffer as it was.
    HandOver,
}

/// Request headers that mean a body, a negotiation or a protocol change: hyper's business.
fn unusual(name: &[u8]) -> bool {
    const UNUSUAL: [&[u8]; 7] = [
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"upgrade",
        b"te",
        b"trailer",
        b"http2-settings",
    ];
    UNUSUAL.iter().any(|u| name.eq_ignore_ascii_case(u))
}

/// hyper's `connection_close`: one of the comma-separated tokens is `close`.
fn has_close(value: &[u8]) -> bool {
    has_token(value, b"close")
}

/// One of the comma-separated tokens of `value` is `token` (ASCII case-insensitive), as
/// hyper's `connection_has` reads it: a value with any byte `HeaderValue::to_str` refuses
/// (obs-text) has no tokens at all.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b))
        && value
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Parses the request head at the start of `buf` (see the module's contract). On
/// [`Head::Fast`] the head is taken off `buf`, which keeps what follows it (a pipelined
/// request); otherwise `buf` is unchanged.
pub(crate) fn parse(buf: &mut BytesMut, max_head: usize) -> Head {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_request_with_uninit_headers(&mut parsed, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < max_head => return Head::Partial,
        Ok(httparse::Status::Partial) | Err(_) => return Head::HandOver,
    };
    let (Some(method), Some(path), Some(minor @ (0 | 1))) =
        (parsed.method, parsed.path, parsed.version)
    else {
        return Head::HandOver;
    };
    let http11 = minor == 1;
    if !path.starts_with('/') || path.len() > MAX_URI_LEN || len > max_head {
        return Head::HandOver;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Head::HandOver;
    };
    if method == Method::CONNECT {
        return Head::HandOver;
    }
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - base;
    let path_at = offset(path.as_bytes());
    let path_range = path_at..path_at + path.len();
    // hyper's rules: HTTP/1.1 stays open unless a `close` token comes, HTTP/1.0 closes unless a
    // `keep-alive` token comes before any `close`.
    let mut keep_alive = http11;
    let mut saw_close = false;
    let mut spans: smallvec::SmallVec<[(HeaderName, usize, usize); 32]> = smallvec::SmallVec::new();
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        if unusual(name) {
            return Head::HandOver;
        }
        let Ok(name) = HeaderName::from_bytes(name) else {
            return Head::HandOver;
        };
        if name == header::CONNECTION {
            if saw_close || has_close(h.value) {
                saw_close = true;
                keep_alive = false;
            } else if !keep_alive {
                keep_alive = has_token(h.value, b"keep-alive");
            }
        }
        let at = offset(h.value);
        spans.push((name, at, at + h.value.len()));
    }
    let head = buf.split_to(len).freeze();
    let Ok(uri) = Uri::from_maybe_shared(head.slice(path_range)) else {
        return put_back(buf, &head);
    };
    // Room for what the phases add (forwarding and identity headers) without growing.
    let mut headers = HeaderMap::with_capacity(spans.len() + 16);
    for (name, from, to) in spans {
        let Ok(value) = HeaderValue::from_maybe_shared(head.slice(from..to)) else {
            return put_back(buf, &head);
        };
        headers.append(name, value);
    }
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = if http11 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    *req.headers_mut() = headers;
    Head::Fast { req, keep_alive }
}

/// Restores `buf` to what it was before `head` was taken off it, for hyper.
fn put_back(buf: &mut BytesMut, head: &Bytes) -> Head {
    let mut whole = BytesMut::with_capacity(head.len() + buf.len());
    whole.extend_from_slice(head);
    whole.extend_from_slice(buf);
    *buf = whole;
    Head::HandOver
}

/// How a response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes (none for `HEAD`, `204`, `304`).
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the connection closes (an HTTP/1.0 response of unknown length).
    Close,
}

/// What hyper's server knows of a body before writing the head (its `BodyLength`).
pub(crate) fn body_length(body: &Body) -> Option<Option<u64>> {
    if body.is_end_stream() {
        None
    } else {
        Some(body.size_hint().exact())
    }
}

fn can_chunked(head_request: bool, status: StatusCode) -> bool {
    !(head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

fn can_have_content_length(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// The response head could not be written (hyper's "user header" errors): the connection is
/// closed without an answer, as hyper does.
#[derive(Debug)]
pub(crate) struct BadHead;

/// What the response's head depends on in its request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked {
    /// The request's version (HTTP/1.0 or HTTP/1.1).
    pub(crate) version: Version,
    /// A `HEAD` request: no body follows the head.
    pub(crate) head: bool,
    /// The connection stays open after this response (the request's wish, unless the listener
    /// is closing).
    pub(crate) keep_alive: bool,
}

/// Writes the head of a response (`parts`, a body of `length` as [`body_length`] gives it) to
/// the request `asked` as hyper's HTTP/1 server does
/// (`proto::h1::conn::Conn::enforce_version`, then `role::Server::encode` with lower-case
/// headers and a `date`). Returns the body's framing and whether the connection ends after
/// this response. The headers are left empty.
pub(crate) fn encode_head(
    parts: &mut http::response::Parts,
    length: Option<Option<u64>>,
    asked: Asked,
    out: &mut Vec<u8>,
) -> Result<(Framing, bool), BadHead> {
    let (status, version) = (parts.status, parts.version);
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    let headers = &mut parts.headers;
    if status.is_informational() {
        return Err(BadHead);
    }
    let head_request = asked.head;
    let mut keep_alive = asked.keep_alive;
    let version = if asked.version == Version::HTTP_10 {
        // `fix_keep_alive`: a response without a `keep-alive` token keeps the connection only
        // if it is HTTP/1.1, and then says so.
        let says_keep_alive = headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v.as_bytes(), b"keep-alive"));
        if !says_keep_alive {
            if version == Version::HTTP_10 {
                keep_alive = false;
            } else if version == Version::HTTP_11 && keep_alive {
                headers.append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
            }
        }
        Version::HTTP_10
    } else {
        if !keep_alive {
            match headers.entry(header::CONNECTION) {
                header::Entry::Occupied(mut e) => {
                    if !e.iter().any(|v| has_close(v.as_bytes())) {
                        e.append(HeaderValue::from_static("close"));
                    }
                }
                header::Entry::Vacant(e) => {
                    e.insert(HeaderValue::from_static("close"));
                }
            }
        }
        version
    };
    let http10 = version == Version::HTTP_10;
    let mut last = !keep_alive;
    if !http10 && status == StatusCode::OK && reason.is_none() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        match reason {
            Some(r) => out.extend_from_slice(r.as_bytes()),
            None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    let mut framing = Framing::Length(0);
    let mut wrote_len = false;
    let mut wrote_date = false;
    // The value lines of a name written once (content-length, transfer-encoding, connection,
    // trailer): the line is open until the next name.
    let mut open_line = false;
    let mut must_write_chunked = false;
    let mut prev_len = None;
    let close_line = |out: &mut Vec<u8>, open: &mut bool, chunked: bool| {
        if *open {
            out.extend_from_slice(if chunked { b", chunked\r\n" } else { b"\r\n" });
            *open = false;
        }
    };
    let mut current: Option<HeaderName> = None;
    for (name, value) in headers.drain() {
        if let Some(n) = name {
            close_line(out, &mut open_line, must_write_chunked);
            current = Some(n);
        }
        let Some(name) = current.as_ref() else {
            continue;
        };
        if *name == header::CONTENT_LENGTH {
            if wrote_len && !open_line {
                return Err(BadHead);
            }
            match length {
                Some(Some(known)) => {
                    // hyper trusts the header here (and asserts in debug builds that they
                    // agree); a head that announces another length than the body has would
                    // desynchronize the client, so it is refused.
                    if content_length(value.as_bytes()) != Some(known)
                        && !(head_request && known == 0)
                    {
                        return Err(BadHead);
                    }
                    if !open_line {
                        framing = Framing::Length(known);
                        out.extend_from_slice(b"content-length: ");
                        out.extend_from_slice(value.as_bytes());
                        wrote_len = true;
                        open_line = true;
                    }
                    continue;
                }
                Some(None) => {
                    let Some(n) = content_length(value.as_bytes()) else {
                        return Err(BadHead);
                    };
                    match prev_len {
                        Some(prev) if prev != n => return Err(BadHead),
                        Some(_) => continue,
                        None => {
                            framing = Framing::Length(n);
                            out.extend_from_slice(b"content-length: ");
                            out.extend_from_slice(value.as_bytes());
                            wrote_len = true;
                            open_line = true;
                            prev_len = Some(n);
                            continue;
                        }
                    }
                }
                None => {
                    if !head_request {
                        continue;
                    }
                    wrote_len = true;
                }
            }
        } else if *name == header::TRANSFER_ENCODING {
            if wrote_len && !open_line {
                return Err(BadHead);
            }
            if http10 || !can_chunked(head_request, status) {
                continue;
            }
            wrote_len = true;
            must_write_chunked = !is_chunked(value.as_bytes());
            if open_line {
                out.extend_from_slice(b", ");
            } else {
                framing = Framing::Chunked;
                open_line = true;
                out.extend_from_slice(b"transfer-encoding: ");
            }
            out.extend_from_slice(value.as_bytes());
            continue;
        } else if *name == header::CONNECTION || *name == header::TRAILER {
            if *name == header::CONNECTION && has_close(value.as_bytes()) {
                last = true;
            }
            if *name == header::TRAILER && (http10 || !can_chunked(head_request, status)) {
                continue;
            }
            if open_line {
                out.extend_from_slice(b", ");
            } else {
                open_line = true;
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
            }
            out.extend_from_slice(value.as_bytes());
            continue;
        } else if *name == header::DATE {
            wrote_date = true;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    close_line(out, &mut open_line, must_write_chunked);
    if !wrote_len {
        framing = match length {
            Some(None) if !http10 && can_chunked(head_request, status) => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked
            }
            Some(None) => Framing::Close,
            None | Some(Some(0)) => {
                if can_have_content_length(status) && !head_request {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Framing::Length(0)
            }
            Some(Some(n)) => {
                if can_have_content_length(status) {
                    out.extend_from_slice(b"content-length: ");
                    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                    out.extend_from_slice(b"\r\n");
                    Framing::Length(n)
                } else {
                    Framing::Length(0)
                }
            }
        };
    }
    if !can_chunked(head_request, status) {
        framing = Framing::Length(0);
    }
    if framing == Framing::Close {
        last = true;
    }
    if wrote_date {
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n\r\n");
    }
    Ok((framing, last))
}

/// hyper's `content_length_parse`: digits only, one value (no list).
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// hyper's `is_chunked_`: the last transfer-coding is `chunked`.
fn is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

mod date {
    use std::cell::RefCell;
    use std::io::Write;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    const LEN: usize = 29;

    thread_local! {
        /// The second last formatted on this thread, and its text.
        static CACHE: RefCell<(u64, [u8; LEN])> = const { RefCell::new((u64::MAX, [0; LEN])) };
    }

    /// Appends the current time as an HTTP date, formatted at most once a second per thread,
    /// into the cache's own array (no allocation, not even once a second).
    pub(super) fn extend(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.0 != secs {
                // `HttpDate` displays as exactly `LEN` bytes: its years run from 1970 to 9999
                // (outside them `from` panics, as it does in hyper's own date cache).
                let mut text = [0u8; LEN];
                if write!(&mut text[..], "{}", httpdate::HttpDate::from(now)).is_ok() {
                    cache.1 = text;
                    cache.0 = secs;
                }
            }
            out.extend_from_slice(&cache.1);
        });
    }
}

/// An IO with bytes already read from it put back in front.
pub(crate) struct Rewind<S> {
    pre: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(inner: S, pre: Bytes) -> Self {
        Rewind { pre, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How the fast path left a connection.
pub(crate) enum Outcome<S> {
    /// Closed (or to be dropped).
    Done,
    /// hyper's server takes it from here: the IO with the bytes read and not yet served.
    HandOver(Rewind<S>),
}

/// Serves requests on `io` until the connection ends or one needs hyper (see the module's
/// contract).
pub(crate) async fn serve<S>(
    gw: &Arc<Gateway>,
    mut io: S,
    conn: &Arc<ConnInfo>,
    closing: &CancellationToken,
) -> Outcome<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (idle, max_head) = {
        let rt = gw.current();
        let server = &rt.config.server;
        (
            server.header_read_timeout.get(),
            server.max_header_bytes.max(8192),
        )
    };
    let peer = conn.peer;
    let watchdog = conn.activity.idle_for(idle);
    tokio::pin!(watchdog);
    let mut buf = BytesMut::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        // One request head.
        let (req, mut keep_alive) = loop {
            if !buf.is_empty() {
                match parse(&mut buf, max_head) {
                    Head::Partial => {}
                    Head::Fast { req, keep_alive } => break (req, keep_alive),
                    Head::HandOver => return Outcome::HandOver(Rewind::new(io, buf.freeze())),
                }
            }
            if buf.capacity() - buf.len() < READ_SPACE {
                buf.reserve(READ_SPACE);
            }
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return Outcome::Done,
                    Ok(_) => {}
                },
                () = closing.cancelled(), if buf.is_empty() => return Outcome::Done,
                () = &mut watchdog => {
                    tracing::debug!(%peer, "closing an idle connection or a slow request head");
                    return Outcome::Done;
                }
            }
        };
        let guard = conn.activity.enter();
        let (version, head_request) = (req.version(), req.method() == Method::HEAD);
        let req = req.map(|()| empty_body());
        let resp = boxed(|| crate::service::handle(gw.clone(), conn.clone(), req)).await;
        keep_alive &= !closing.is_cancelled();
        let (mut parts, mut body) = resp.into_parts();
        // hyper's server writes no body to `HEAD` (its framing is `Length(0)`), but the head
        // carries the body's length.
        let length = body_length(&body);
        out.clear();
        let asked = Asked {
            version,
            head: head_request,
            keep_alive,
        };
        let Ok((framing, last)) = encode_head(&mut parts, length, asked, &mut out) else {
            tracing::debug!(%peer, "response head refused; closing the connection");
            return Outcome::Done;
        };
        let sent = write_body(&mut io, &mut out, &mut body, framing).await;
        drop(body);
        drop(guard);
        if out.capacity() > 4 * WRITE_GATHER {
            out = Vec::new();
        }
        match sent {
            Ok(()) if !last => {}
            Ok(()) => {
                let _ = io.shutdown().await;
                return Outcome::Done;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "response not sent; closing the connection");
                return Outcome::Done;
            }
        }
        if closing.is_cancelled() && buf.is_empty() {
            let _ = io.shutdown().await;
            return Outcome::Done;
        }
    }
}

/// Writes `out` (the head) and the body in its framing: small frames gathered with the head,
/// everything written before waiting for more of the body.
pub(crate) async fn write_body<S: AsyncWrite + Unpin>(
    io: &mut S,
    out: &mut Vec<u8>,
    body: &mut Body,
    framing: Framing,
) -> io::Result<()> {
    let mut remaining = match framing {
        Framing::Length(n) => n,
        Framing::Chunked | Framing::Close => u64::MAX,
    };
    let mut ended = framing == Framing::Length(0);
    while !ended {
        let frame =
            match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await
            {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    flush(io, out).await?;
                    body.frame().await
                }
            };
        let data = match frame {
            None => {
                match framing {
                    Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
                    Framing::Close => {}
                    Framing::Length(_) => {
                        return Err(io::Error::other(format!(
                            "response body ended {remaining} bytes short"
                        )));
                    }
                }
                break;
            }
            Some(Err(e)) => return Err(io::Error::other(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers: dropped (see the module's contract).
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        match framing {
            Framing::Close => push(io, out, &data, b"").await?,
            Framing::Length(_) => {
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                remaining -= take as u64;
                ended = remaining == 0;
                push(io, out, &data[..take], b"").await?;
            }
            Framing::Chunked => {
                let mut size = [0u8; 18];
                let size = hex_line(data.len(), &mut size);
                out.extend_from_slice(size);
                push(io, out, &data, b"\r\n").await?;
            }
        }
    }
    flush(io, out).await
}

/// `len` in upper-case hex with CRLF, as hyper writes a chunk size.
fn hex_line(mut len: usize, buf: &mut [u8; 18]) -> &[u8] {
    let mut at = 16;
    buf[16] = b'\r';
    buf[17] = b'\n';
    loop {
        at -= 1;
        buf[at] = b"0123456789ABCDEF"[len & 15];
        len >>= 4;
        if len == 0 {
            break;
        }
    }
    &buf[at..]
}

/// Queues `data` then `tail` behind `out`, writing when enough is gathered.
async fn push<S: AsyncWrite + Unpin>(
    io: &mut S,
    out: &mut Vec<u8>,
    data: &[u8],
    tail: &[u8],
) -> io::Result<()> {
    if out.len() + data.len() <= WRITE_GATHER {
        out.extend_from_slice(data);
        out.extend_from_slice(tail);
        return Ok(());
    }
    // Head (or gathered frames) and this frame in one vectored write, as hyper's queue does.
    let mut head = &out[..];
    let mut data = data;
    while !head.is_empty() || !data.is_empty() {
        let n = io
            .write_vectored(&[io::IoSlice::new(head), io::IoSlice::new(data)])
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        data = &data[n - from_head..];
    }
    out.clear();
    out.extend_from_slice(tail);
    Ok(())
}

async fn flush<S: AsyncWrite + Unpin>(io: &mut S, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_date_is_the_current_http_date() {
        let before = std::time::SystemTime::now();
        let mut out = Vec::new();
        date::extend(&mut out);
        date::extend(&mut out);
        let after = std::time::SystemTime::now();
        assert_eq!(out.len(), 58, "{:?}", String::from_utf8_lossy(&out));
        let (first, second) = out.split_at(29);
        for text in [first, second] {
            let text = std::str::from_utf8(text).unwrap();
            let when = httpdate::parse_http_date(text).unwrap();
            let floor = |t: std::time::SystemTime| {
                t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            };
            let secs = floor(when);
            assert!(
                floor(before) <= secs && secs <= floor(after),
                "{text} is not now"
            );
            assert!(text.ends_with(" GMT"), "{text}");
        }
    }

    fn decide(text: &str) -> (&'static str, usize) {
        let mut buf = BytesMut::from(text.as_bytes());
        let kind = match parse(&mut buf, 8192) {
            Head::Partial => "partial",
            Head::Fast {
                keep_alive: true, ..
            } => "fast",
            Head::Fast {
                keep_alive: false, ..
            } => "fast, close",
            Head::HandOver => "hyper",
        };
        (kind, buf.len())
    }

    #[test]
    fn only_the_common_request_takes_the_fast_path() {
        let get = "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(decide(get), ("fast", 0));
        assert_eq!(decide(&format!("{get}GET /next")), ("fast", 9));
        assert_eq!(decide("GET /a HTTP/1.1\r\nHost: h\r\n"), ("partial", 26));
        assert_eq!(
            decide("GET / HTTP/1.1\r\nConnection: keep-alive, CLOSE\r\n\r\n"),
            ("fast, close", 0)
        );
        assert_eq!(decide("GET / HTTP/1.0\r\n\r\n"), ("fast, close", 0));
        assert_eq!(
            decide("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
            ("fast", 0)
        );
        assert_eq!(
            decide("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"),
            ("fast, close", 0)
        );
        for unusual in [
            "GET / HTTP/1.2\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET http://h/ HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "CONNECT h:443 HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\ntransfer-ENCODING: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nTE: trailers\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
        ] {
            assert_eq!(decide(unusual), ("hyper", unusual.len()), "{unusual:?}");
        }
        let many: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(decide(&many), ("hyper", many.len()));
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(9000));
        assert_eq!(decide(&big), ("hyper", big.len()));
    }

    #[test]
    fn the_request_keeps_every_header_in_order() {
        let mut buf = BytesMut::from(
            &b"GET /p HTTP/1.1\r\nX-Remote-User: a\r\nhost: h\r\nx-remote-user: b\r\n\r\n"[..],
        );
        let Head::Fast { req, .. } = parse(&mut buf, 8192) else {
            panic!("not served");
        };
        let seen: Vec<_> = req
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
            .collect();
        assert_eq!(seen, ["x-remote-user=a", "x-remote-user=b", "host=h"]);
        assert_eq!((req.uri().path(), req.version()), ("/p", Version::HTTP_11));
    }

    #[test]
    fn chunk_sizes_are_upper_case_hex_lines() {
        let mut buf = [0u8; 18];
        assert_eq!(hex_line(0, &mut buf), b"0\r\n");
        assert_eq!(hex_line(0xABC1, &mut buf), b"ABC1\r\n");
        assert_eq!(hex_line(usize::MAX, &mut buf), b"FFFFFFFFFFFFFFFF\r\n");
    }

    #[tokio::test]
    async fn handed_over_bytes_come_first() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b" world").await.unwrap();
        drop(a);
        let mut io = Rewind::new(b, Bytes::from_static(b"hello"));
        let mut all = String::new();
        io.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }
}
