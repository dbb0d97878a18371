//! Incremental HTTP/1.1 framing: where a message head ends and how long its body is
//! (`Content-Length`, chunked, none, or until the connection closes). The proxy never rewrites
//! what it forwards; this only tells it where the message boundaries are.

/// Longest message head tracked; a longer one makes the connection opaque (passed through).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest chunk-size or trailer line.
const MAX_LINE_BYTES: usize = 8 * 1024;
/// Most headers in one head.
const MAX_HEADERS: usize = 128;

/// Bytes that are not the HTTP/1.1 this module follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHttp(pub String);

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes (a response without a length).
    UntilClose,
}

/// Accumulates a head until its empty line.
#[derive(Debug, Default)]
pub struct HeadReader {
    buf: Vec<u8>,
}

impl HeadReader {
    /// The bytes of the head so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Whether nothing of a head arrived yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes bytes of `data` into the head. Returns how many were taken and whether the head
    /// is complete (then the rest of `data` is after it). On error nothing of `data` is taken.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, bool), NotHttp> {
        let old = self.buf.len();
        let from = old.saturating_sub(3);
        let take = data.len().min(MAX_HEAD_BYTES.saturating_sub(old));
        self.buf.extend_from_slice(&data[..take]);
        if let Some(i) = find(&self.buf[from..], b"\r\n\r\n") {
            let end = from + i + 4;
            self.buf.truncate(end);
            return Ok((end - old, true));
        }
        if take < data.len() || self.buf.len() >= MAX_HEAD_BYTES {
            // Nothing of `data` was taken: the caller passes it on as it is.
            self.buf.truncate(old);
            return Err(NotHttp(format!("head longer than {MAX_HEAD_BYTES} bytes")));
        }
        Ok((take, false))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `prefix` can still start an HTTP/1.x request (a method token, a space, a target).
pub fn plausible_request(prefix: &[u8]) -> bool {
    let line_end = prefix.iter().position(|b| *b == b'\n');
    let line = &prefix[..line_end.unwrap_or(prefix.len())];
    let method_len = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if !line[..method_len].iter().all(token) || method_len > 32 {
        return false;
    }
    match line_end {
        // A complete request line ends with the version.
        Some(_) => line.windows(7).any(|w| w == b" HTTP/1"),
        None => true,
    }
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method.
    pub method: String,
    /// Path of the target (query excluded; the path of an absolute-form target).
    pub path: String,
    /// Its body.
    pub body: Body,
    /// Whether the connection may stop being HTTP after it (`Upgrade`, `CONNECT`).
    pub switches: bool,
}

fn header_body(headers: &[httparse::Header<'_>]) -> Result<Option<Body>, NotHttp> {
    let mut length: Option<u64> = None;
    let mut chunked = None;
    for h in headers {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| NotHttp("header value is not UTF-8".into()))?
            .trim();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            chunked = Some(last.eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| NotHttp(format!("content-length {value:?}")))?;
            if length.is_some_and(|l| l != n) {
                return Err(NotHttp("conflicting content-length".into()));
            }
            length = Some(n);
        }
    }
    Ok(match (chunked, length) {
        (Some(true), _) => Some(Body::Chunked),
        (Some(false), _) => Some(Body::UntilClose),
        (None, Some(n)) => Some(Body::Length(n)),
        (None, None) => None,
    })
}

/// Parses a complete request head.
pub fn parse_request(head: &[u8]) -> Result<RequestHead, NotHttp> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(NotHttp("partial head".into())),
        Err(e) => return Err(NotHttp(format!("request head: {e}"))),
    }
    let method = req.method.unwrap_or_default().to_owned();
    let target = req.path.unwrap_or("/");
    let path = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or("/").to_owned();
    let body = match header_body(req.headers)? {
        Some(Body::UntilClose) => {
            return Err(NotHttp("request transfer-encoding is not chunked".into()))
        }
        Some(b) => b,
        None => Body::None,
    };
    let switches = method == "CONNECT"
        || req
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    Ok(RequestHead {
        method,
        path,
        body,
        switches,
    })
}

/// What a response head means for the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// A 1xx: the final response is still to come.
    Interim,
    /// The final response, with its body.
    Final(Body),
    /// `101 Switching Protocols`, or a 2xx to `CONNECT`: no more HTTP on this connection.
    Switch,
}

/// Parses a complete response head to a request with `method`.
pub fn parse_response(head: &[u8], method: Option<&str>) -> Result<(u16, ResponseKind), NotHttp> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(NotHttp("partial head".into())),
        Err(e) => return Err(NotHttp(format!("response head: {e}"))),
    }
    let status = resp.code.unwrap_or(0);
    let kind = match status {
        101 => ResponseKind::Switch,
        100..=199 => ResponseKind::Interim,
        200..=299 if method == Some("CONNECT") => ResponseKind::Switch,
        204 | 304 => ResponseKind::Final(Body::None),
        _ if method == Some("HEAD") => ResponseKind::Final(Body::None),
        _ => ResponseKind::Final(header_body(resp.headers)?.unwrap_or(Body::UntilClose)),
    };
    Ok((status, kind))
}

#[derive(Debug)]
enum Chunk {
    Size(Vec<u8>),
    Data(u64),
    DataEnd(bool),
    Trailer(Vec<u8>),
}

/// Follows one body through the bytes that carry it.
#[derive(Debug)]
pub struct BodyReader {
    state: BodyState,
}

#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

impl BodyReader {
    /// A reader of a `body`.
    pub fn new(body: Body) -> BodyReader {
        let state = match body {
            Body::None | Body::Length(0) => BodyState::Done,
            Body::Length(n) => BodyState::Length(n),
            Body::Chunked => BodyState::Chunked(Chunk::Size(Vec::new())),
            Body::UntilClose => BodyState::UntilClose,
        };
        BodyReader { state }
    }

    /// Whether the body is complete.
    pub fn done(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Takes the bytes of `data` that belong to the body; returns how many (the rest of `data`
    /// starts the next message once [`Self::done`]).
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, NotHttp> {
        let mut used = 0;
        while used < data.len() && !self.done() {
            used += self.step(&data[used..])?;
        }
        Ok(used)
    }

    fn step(&mut self, data: &[u8]) -> Result<usize, NotHttp> {
        match &mut self.state {
            BodyState::Done => Ok(0),
            BodyState::UntilClose => Ok(data.len()),
            BodyState::Length(n) => {
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(data.len());
                *n -= take as u64;
                if *n == 0 {
                    self.state = BodyState::Done;
                }
                Ok(take)
            }
            BodyState::Chunked(c) => {
                let (used, next) = chunk_step(c, data)?;
                if let Some(next) = next {
                    self.state = next;
                }
                Ok(used)
            }
        }
    }
}

/// Takes one line's worth (up to and including `\n`) into `line`; `Some` once it is complete.
fn take_line(line: &mut Vec<u8>, data: &[u8]) -> Result<(usize, bool), NotHttp> {
    let (take, complete) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (i + 1, true),
        None => (data.len(), false),
    };
    line.extend_from_slice(&data[..take]);
    if line.len() > MAX_LINE_BYTES {
        return Err(NotHttp("chunk line too long".into()));
    }
    Ok((take, complete))
}

fn chunk_step(c: &mut Chunk, data: &[u8]) -> Result<(usize, Option<BodyState>), NotHttp> {
    match c {
        Chunk::Size(line) => {
            let (used, complete) = take_line(line, data)?;
            if complete {
                let text = std::str::from_utf8(line).map_err(|_| NotHttp("chunk size".into()))?;
                let hex = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(hex, 16)
                    .map_err(|_| NotHttp(format!("chunk size {hex:?}")))?;
                *c = if size == 0 {
                    Chunk::Trailer(Vec::new())
                } else {
                    Chunk::Data(size)
                };
            }
            Ok((used, None))
        }
        Chunk::Data(n) => {
            let take = usize::try_from(*n).unwrap_or(usize::MAX).min(data.len());
            *n -= take as u64;
            if *n == 0 {
                *c = Chunk::DataEnd(false);
            }
            Ok((take, None))
        }
        Chunk::DataEnd(saw_cr) => match (data[0], *saw_cr) {
            (b'\r', false) => {
                *c = Chunk::DataEnd(true);
                Ok((1, None))
            }
            (b'\n', _) => {
                *c = Chunk::Size(Vec::new());
                Ok((1, None))
            }
            (b, _) => Err(NotHttp(format!("byte {b:#x} after a chunk"))),
        },
        Chunk::Trailer(line) => {
            let (used, complete) = take_line(line, data)?;
            if !complete {
                return Ok((used, None));
            }
            if line == b"\r\n" || line == b"\n" {
                return Ok((used, Some(BodyState::Done)));
            }
            line.clear();
            Ok((used, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves heads are found across reads and request/response framing follows RFC 9112:
    /// lengths, chunked bodies split anywhere, HEAD/204/1xx without bodies.
    #[test]
    fn framing_across_reads() {
        let msg = b"POST /refund?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;e=1\r\nabcd\r\n0\r\nT: v\r\n\r\nGET /";
        for split in 1..msg.len() {
            let mut head = HeadReader::default();
            let (first, done) = head.feed(&msg[..split]).expect("head");
            let consumed = if done {
                first
            } else {
                let (more, done) = head.feed(&msg[split..]).expect("head");
                assert!(done, "split at {split}");
                split + more
            };
            assert_eq!(consumed, head.bytes().len());
            let req = parse_request(head.bytes()).expect("request");
            assert_eq!(
                (req.method.as_str(), req.path.as_str()),
                ("POST", "/refund")
            );
            assert_eq!(req.body, Body::Chunked);
            let mut body = BodyReader::new(req.body);
            let rest = &msg[consumed..];
            let (a, b) = rest.split_at((split % rest.len()).max(1));
            let mut n = body.feed(a).expect("body");
            if !body.done() {
                n += body.feed(b).expect("body");
            }
            assert!(body.done());
            assert_eq!(&rest[n..], b"GET /", "split at {split}");
        }
        let (s, k) = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            Some("HEAD"),
        )
        .expect("resp");
        assert_eq!((s, k), (200, ResponseKind::Final(Body::None)));
        let (_, k) = parse_response(b"HTTP/1.1 100 Continue\r\n\r\n", Some("POST")).expect("1xx");
        assert_eq!(k, ResponseKind::Interim);
        let (_, k) = parse_response(b"HTTP/1.1 200 OK\r\n\r\n", Some("GET")).expect("close");
        assert_eq!(k, ResponseKind::Final(Body::UntilClose));
        assert!(plausible_request(b"GET / HT"));
        assert!(!plausible_request(b"\x16\x03\x01"));
        assert!(!plausible_request(b"hello world\n"));
    }
}
