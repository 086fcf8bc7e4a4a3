//! The http / https negotiate check: one HTTP/1.1 request with
//! `Connection: close`, the response read to its end (Content-Length,
//! chunked or close), up if the status is 2xx and the body matches the
//! receive pattern (or the pattern is empty), like the Perl daemon's
//! LWP-based `check_http`. Redirects to the same server are followed (LWP
//! follows GET/HEAD redirects, up to 7).

use std::net::IpAddr;
use std::sync::Arc;

use regex::bytes::Regex;

use super::{excerpt, Outcome, Step};
use crate::config::HttpMethod;

/// The User-Agent sent (keeps the `libwww-perl` token admins may have
/// allowed in web application firewalls for the Perl daemon).
pub const USER_AGENT: &str = "ldirectord/1.186-ha libwww-perl/6.68 (heartbeat-rs)";

const MAX_HEAD: usize = 64 * 1024;
/// Body bytes kept for matching; the rest is read and dropped.
pub const MAX_BODY: usize = 1024 * 1024;
const MAX_REDIRECTS: u8 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
    Done,
}

/// One http(s) check, possibly across redirects.
#[derive(Debug)]
pub struct Http {
    method: HttpMethod,
    host_header: String,
    rip: IpAddr,
    virtualhost: Option<String>,
    path: String,
    port: u16,
    tls: bool,
    receive: Option<Arc<Regex>>,
    redirects: u8,
    buf: Vec<u8>,
    head_end: Option<usize>,
    status: u16,
    status_line: String,
    location: Option<String>,
    framing: Framing,
    /// decoded body for chunked responses
    body: Vec<u8>,
    chunk: Chunk,
    cursor: usize,
    body_total: usize,
    /// ask for (and allow) a persistent connection
    keepalive: bool,
    /// the response may leave the connection open for the next check
    persistent: bool,
    /// the response ended by its framing (not by the connection closing)
    complete: bool,
}

impl Http {
    /// `path` starts with `/`. `receive` is `None` when empty.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: HttpMethod,
        rip: IpAddr,
        port: u16,
        tls: bool,
        virtualhost: Option<String>,
        path: String,
        receive: Option<Arc<Regex>>,
        keepalive: bool,
    ) -> Http {
        let host_header = match (&virtualhost, rip) {
            (Some(h), _) => h.clone(),
            (None, IpAddr::V6(a)) => format!("[{a}]"),
            (None, a) => a.to_string(),
        };
        Http {
            method,
            host_header,
            rip,
            virtualhost,
            path,
            port,
            tls,
            receive,
            redirects: 0,
            buf: Vec::new(),
            head_end: None,
            status: 0,
            status_line: String::new(),
            location: None,
            framing: Framing::Close,
            body: Vec::new(),
            chunk: Chunk::Size,
            cursor: 0,
            body_total: 0,
            keepalive,
            persistent: false,
            complete: false,
        }
    }

    /// After an outcome: the server will keep the connection open and the
    /// response was read to its end, so the next check may reuse it.
    pub fn reusable(&self) -> bool {
        self.keepalive && self.persistent && self.complete && self.redirects == 0
    }

    /// The URL checked, for log lines (`http://IP:PORT/path`).
    pub fn url(&self) -> String {
        let host = match self.rip {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        format!(
            "{}://{host}:{}{}",
            if self.tls { "https" } else { "http" },
            self.port,
            self.path
        )
    }

    pub fn request_bytes(&self) -> Vec<u8> {
        format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\n{}\r\n",
            self.method.as_str(),
            self.path,
            self.host_header,
            if self.keepalive {
                ""
            } else {
                "Connection: close\r\n"
            }
        )
        .into_bytes()
    }

    pub fn start(&mut self) -> Step {
        self.buf.clear();
        self.head_end = None;
        self.body.clear();
        self.chunk = Chunk::Size;
        self.cursor = 0;
        self.body_total = 0;
        self.location = None;
        self.persistent = false;
        self.complete = false;
        Step::Send(self.request_bytes())
    }

    pub fn data(&mut self, data: &[u8]) -> Step {
        match self.head_end {
            Some(head_end) if self.framing != Framing::Chunked => {
                // plain body: keep up to MAX_BODY
                self.body_total += data.len();
                let room = (head_end + MAX_BODY).saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&data[..data.len().min(room)]);
            }
            _ => self.buf.extend_from_slice(data),
        }
        let head_end = match self.head_end {
            Some(h) => h,
            None => match self.parse_head() {
                Ok(true) => self.head_end.unwrap_or(0),
                Ok(false) => return Step::Wait,
                Err(o) => return Step::Done(o),
            },
        };
        match self.framing {
            Framing::None => {
                self.complete = true;
                self.finish()
            }
            Framing::Length(n) => {
                if self.buf.len() - head_end >= n.min(MAX_BODY) && self.body_total >= n {
                    self.complete = self.body_total == n;
                    self.finish()
                } else {
                    Step::Wait
                }
            }
            Framing::Close => Step::Wait,
            Framing::Chunked => {
                if let Err(o) = self.dechunk() {
                    return Step::Done(o);
                }
                if self.chunk == Chunk::Done {
                    self.complete = self.cursor == self.buf.len();
                    self.finish()
                } else {
                    Step::Wait
                }
            }
        }
    }

    pub fn eof(&mut self) -> Step {
        match (self.head_end, self.framing) {
            (None, _) if self.buf.is_empty() => Step::Done(Outcome::down(
                "500 Server closed connection without sending any data back",
            )),
            (None, _) => Step::Done(Outcome::down(format!(
                "500 incomplete response header: {}",
                excerpt(&self.buf, 80)
            ))),
            (Some(_), Framing::Close | Framing::None) => self.finish(),
            (Some(_), Framing::Length(_)) | (Some(_), Framing::Chunked) => {
                // LWP accepts a short body as the content; so do we.
                self.finish()
            }
        }
    }

    /// Parses status line and headers once complete. Ok(false): need more.
    fn parse_head(&mut self) -> Result<bool, Outcome> {
        let Some(end) = find_head_end(&self.buf) else {
            if self.buf.len() > MAX_HEAD {
                return Err(Outcome::down("500 response header too long"));
            }
            return Ok(false);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let proto = parts.next().unwrap_or("");
        let code = parts.next().and_then(|c| c.parse::<u16>().ok());
        let reason = parts.next().unwrap_or("").trim();
        let (true, Some(code)) = (proto.starts_with("HTTP/"), code) else {
            return Err(Outcome::down(format!(
                "500 invalid response: {}",
                excerpt(status_line.as_bytes(), 80)
            )));
        };
        let mut length = None;
        let mut chunked = false;
        let mut location = None;
        let mut conn_close = false;
        let mut conn_keep = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            } else if k.eq_ignore_ascii_case("location") {
                location = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("connection") {
                let v = v.to_ascii_lowercase();
                conn_close |= v.contains("close");
                conn_keep |= v.contains("keep-alive");
            }
        }
        if (100..200).contains(&code) {
            // interim response: drop it and read the next head
            self.buf.drain(..end);
            return self.parse_head();
        }
        self.status = code;
        self.persistent = if proto == "HTTP/1.1" {
            !conn_close
        } else {
            conn_keep && !conn_close
        };
        self.status_line = if reason.is_empty() {
            code.to_string()
        } else {
            format!("{code} {reason}")
        };
        self.location = location;
        self.framing = if self.method == HttpMethod::Head || code == 204 || code == 304 {
            Framing::None
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::Close
        };
        self.head_end = Some(end);
        self.cursor = end;
        self.body_total = self.buf.len() - end;
        if self.framing != Framing::Chunked && self.body_total > MAX_BODY {
            self.buf.truncate(end + MAX_BODY);
        }
        Ok(true)
    }

    /// Decodes as much of a chunked body as has arrived.
    fn dechunk(&mut self) -> Result<(), Outcome> {
        loop {
            match self.chunk {
                Chunk::Size | Chunk::DataEnd | Chunk::Trailer => {
                    let Some(nl) = self.buf[self.cursor..].iter().position(|&b| b == b'\n') else {
                        if self.buf.len() - self.cursor > MAX_HEAD {
                            return Err(Outcome::down("500 bad chunked encoding"));
                        }
                        return Ok(());
                    };
                    let line = String::from_utf8_lossy(&self.buf[self.cursor..self.cursor + nl])
                        .trim()
                        .to_string();
                    self.cursor += nl + 1;
                    match self.chunk {
                        Chunk::Size => {
                            let hex = line.split(';').next().unwrap_or("").trim();
                            let n = usize::from_str_radix(hex, 16)
                                .map_err(|_| Outcome::down("500 bad chunked encoding"))?;
                            self.chunk = if n == 0 {
                                Chunk::Trailer
                            } else {
                                Chunk::Data(n)
                            };
                        }
                        Chunk::DataEnd => self.chunk = Chunk::Size,
                        _ => {
                            if line.is_empty() {
                                self.chunk = Chunk::Done;
                                return Ok(());
                            }
                        }
                    }
                }
                Chunk::Data(n) => {
                    let avail = self.buf.len() - self.cursor;
                    let take = avail.min(n);
                    let room = MAX_BODY.saturating_sub(self.body.len());
                    let keep = take.min(room);
                    self.body
                        .extend_from_slice(&self.buf[self.cursor..self.cursor + keep]);
                    self.cursor += take;
                    self.chunk = if take == n {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(n - take)
                    };
                    // drop consumed input
                    self.buf.drain(self.head_end.unwrap()..self.cursor);
                    self.cursor = self.head_end.unwrap();
                    if take < n {
                        return Ok(());
                    }
                }
                Chunk::Done => return Ok(()),
            }
        }
    }

    fn finish(&mut self) -> Step {
        let code = self.status;
        if matches!(code, 301 | 302 | 303 | 307 | 308) {
            if let Some(loc) = self.location.clone() {
                return self.redirect(&loc);
            }
        }
        if !(200..300).contains(&code) {
            return Step::Done(Outcome::down(self.status_line.clone()));
        }
        let body: &[u8] = if self.framing == Framing::Chunked {
            &self.body
        } else {
            &self.buf[self.head_end.unwrap_or(0)..]
        };
        match &self.receive {
            Some(re) if !re.is_match(body) => Step::Done(Outcome::down(if body.is_empty() {
                format!("{} (empty body does not match receive)", self.status_line)
            } else {
                excerpt(body, 200)
            })),
            _ => Step::Done(Outcome::up(self.status_line.clone())),
        }
    }

    fn redirect(&mut self, loc: &str) -> Step {
        if self.redirects >= MAX_REDIRECTS {
            return Step::Done(Outcome::down(format!(
                "{} (more than {MAX_REDIRECTS} redirects)",
                self.status_line
            )));
        }
        self.redirects += 1;
        let not_followed = |s: &Self| {
            Step::Done(Outcome::down(format!(
                "{} redirect to {loc} not followed (another server)",
                s.status_line
            )))
        };
        let (tls, rest) = if let Some(r) = loc.strip_prefix("http://") {
            (Some(false), r)
        } else if let Some(r) = loc.strip_prefix("https://") {
            (Some(true), r)
        } else if let Some(r) = loc.strip_prefix("//") {
            (Some(self.tls), r)
        } else {
            (None, loc)
        };
        if let Some(tls) = tls {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (host, port) = split_authority(authority, if tls { 443 } else { 80 });
            let rip = match self.rip {
                IpAddr::V6(a) => format!("[{a}]"),
                a => a.to_string(),
            };
            let same = host.eq_ignore_ascii_case(&rip)
                || self
                    .virtualhost
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case(host));
            let Some(port) = port.filter(|_| same) else {
                return not_followed(self);
            };
            self.port = port;
            self.tls = tls;
            self.path = path.to_string();
        } else if loc.starts_with('/') {
            self.path = loc.to_string();
        } else {
            // relative to the current directory
            let dir = match self.path.rfind('/') {
                Some(i) => &self.path[..=i],
                None => "/",
            };
            self.path = format!("{dir}{loc}");
        }
        Step::Reconnect {
            port: self.port,
            tls: self.tls,
        }
    }
}

/// `host[:port]` (IPv6 in brackets); `None` port if unparsable.
fn split_authority(a: &str, default: u16) -> (&str, Option<u16>) {
    if a.starts_with('[') {
        match a.find(']') {
            Some(i) => {
                let host = &a[..=i];
                match a[i + 1..].strip_prefix(':') {
                    Some(p) => (host, p.parse().ok()),
                    None => (host, Some(default)),
                }
            }
            None => (a, None),
        }
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()),
            None => (a, Some(default)),
        }
    }
}

/// Index just past the blank line ending the head (`\r\n\r\n` or `\n\n`).
fn find_head_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(receive: Option<&str>) -> Http {
        Http::new(
            HttpMethod::Get,
            "10.0.0.2".parse().unwrap(),
            80,
            false,
            Some("www.funbsd.net".into()),
            "/test.html".into(),
            receive.map(|r| Arc::new(Regex::new(r).unwrap())),
            false,
        )
    }

    fn run(h: &mut Http, chunks: &[&[u8]], eof: bool) -> Step {
        let Step::Send(req) = h.start() else {
            panic!("no request")
        };
        let req = String::from_utf8(req).unwrap();
        assert!(
            req.starts_with("GET /test.html HTTP/1.1\r\nHost: www.funbsd.net\r\n"),
            "{req}"
        );
        assert!(req.ends_with("Connection: close\r\n\r\n"));
        let mut last = Step::Wait;
        for c in chunks {
            last = h.data(c);
            if last != Step::Wait {
                return last;
            }
        }
        if eof {
            last = h.eof();
        }
        last
    }

    #[test]
    fn up_with_content_length_in_pieces() {
        let mut h = check(Some("Test Page"));
        let s = run(
            &mut h,
            &[
                b"HTTP/1.1 200 OK\r\nContent-Le",
                b"ngth: 9\r\n\r\nTest ",
                b"Page",
            ],
            false,
        );
        assert_eq!(s, Step::Done(Outcome::up("200 OK")));
    }

    #[test]
    fn body_until_close() {
        let mut h = check(Some("Test Page"));
        let s = run(
            &mut h,
            &[b"HTTP/1.0 200 OK\r\n\r\n<h1>Test Page</h1>"],
            true,
        );
        assert_eq!(s, Step::Done(Outcome::up("200 OK")));
        let mut h = check(Some("Test Page"));
        let s = run(&mut h, &[b"HTTP/1.0 200 OK\r\n\r\nOther"], true);
        assert_eq!(s, Step::Done(Outcome::down("Other")));
    }

    #[test]
    fn chunked_body_is_decoded_before_matching() {
        let mut h = check(Some("^Test Page$"));
        let s = run(
            &mut h,
            &[
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nTest \r\n",
                b"4;ext=1\r\nPa",
                b"ge\r\n0\r\n\r\n",
            ],
            false,
        );
        assert_eq!(s, Step::Done(Outcome::up("200 OK")));
    }

    #[test]
    fn non_2xx_is_down_with_status_line() {
        let mut h = check(None);
        let s = run(
            &mut h,
            &[b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"],
            false,
        );
        assert_eq!(s, Step::Done(Outcome::down("503 Service Unavailable")));
        let mut h = check(None);
        let s = run(&mut h, &[b"HTTP/1.1 204 No Content\r\n\r\n"], false);
        assert_eq!(s, Step::Done(Outcome::up("204 No Content")));
    }

    #[test]
    fn interim_100_continue_is_skipped() {
        let mut h = check(None);
        let s = run(
            &mut h,
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            false,
        );
        assert_eq!(s, Step::Done(Outcome::up("200 OK")));
    }

    #[test]
    fn empty_and_garbage_responses() {
        let mut h = check(None);
        assert_eq!(
            run(&mut h, &[], true),
            Step::Done(Outcome::down(
                "500 Server closed connection without sending any data back"
            ))
        );
        let mut h = check(None);
        let Step::Done(o) = run(&mut h, &[b"SSH-2.0-OpenSSH\r\n\r\n"], false) else {
            panic!()
        };
        assert!(!o.up && o.msg.starts_with("500 invalid response"), "{o:?}");
    }

    #[test]
    fn redirects_to_the_same_server_are_followed() {
        let mut h = check(Some("Test Page"));
        let s = run(
            &mut h,
            &[b"HTTP/1.1 302 Found\r\nLocation: /new/\r\nContent-Length: 0\r\n\r\n"],
            false,
        );
        assert_eq!(
            s,
            Step::Reconnect {
                port: 80,
                tls: false
            }
        );
        let Step::Send(req) = h.start() else { panic!() };
        assert!(req.starts_with(b"GET /new/ HTTP/1.1\r\nHost: www.funbsd.net"));
        let s = h.data(b"HTTP/1.1 301 Moved\r\nLocation: https://www.funbsd.net:8443/x\r\n\r\n");
        assert_eq!(s, Step::Wait, "no length: the body ends at close");
        assert_eq!(
            h.eof(),
            Step::Reconnect {
                port: 8443,
                tls: true
            }
        );
        assert_eq!(h.url(), "https://10.0.0.2:8443/x");
        h.start();
        h.data(b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.example/\r\n\r\n");
        let s = h.eof();
        let Step::Done(o) = s else { panic!("{s:?}") };
        assert!(!o.up && o.msg.contains("not followed"), "{o:?}");
    }

    #[test]
    fn head_has_no_body() {
        let mut h = Http::new(
            HttpMethod::Head,
            "2001:db8::2".parse().unwrap(),
            8080,
            false,
            None,
            "/".into(),
            None,
            false,
        );
        let Step::Send(req) = h.start() else { panic!() };
        assert!(req.starts_with(b"HEAD / HTTP/1.1\r\nHost: [2001:db8::2]\r\n"));
        assert_eq!(
            h.data(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"),
            Step::Done(Outcome::up("200 OK"))
        );
    }

    #[test]
    fn keepalive_reuse_rules() {
        let mk = || {
            Http::new(
                HttpMethod::Get,
                "10.0.0.2".parse().unwrap(),
                80,
                false,
                None,
                "/".into(),
                None,
                true,
            )
        };
        let mut h = mk();
        let Step::Send(req) = h.start() else { panic!() };
        assert!(!String::from_utf8(req).unwrap().contains("Connection:"));
        assert_eq!(
            h.data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Step::Done(Outcome::up("200 OK"))
        );
        assert!(h.reusable(), "HTTP/1.1 with a length: the connection stays");
        h.start();
        h.data(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        assert!(!h.reusable(), "the server closes it");
        h.start();
        h.data(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(!h.reusable(), "HTTP/1.0 without keep-alive");
        h.start();
        h.data(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok");
        assert!(h.reusable());
        h.start();
        h.data(b"HTTP/1.1 200 OK\r\n\r\nbody until close");
        h.eof();
        assert!(!h.reusable(), "a body ended by close");
        h.start();
        h.data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
        assert!(!h.reusable(), "bytes after the response");
        let mut off = Http::new(
            HttpMethod::Get,
            "10.0.0.2".parse().unwrap(),
            80,
            false,
            None,
            "/".into(),
            None,
            false,
        );
        let Step::Send(req) = off.start() else {
            panic!()
        };
        assert!(String::from_utf8(req)
            .unwrap()
            .contains("Connection: close\r\n"));
        off.data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(!off.reusable(), "keepalive=no never reuses");
    }

    #[test]
    fn large_body_is_capped() {
        let mut h = check(Some("END"));
        h.start();
        assert_eq!(h.data(b"HTTP/1.1 200 OK\r\n\r\n"), Step::Wait);
        let big = vec![b'x'; 512 * 1024];
        for _ in 0..4 {
            assert_eq!(h.data(&big), Step::Wait);
        }
        assert!(h.buf.len() <= MAX_BODY + 64);
        let Step::Done(o) = h.eof() else { panic!() };
        assert!(!o.up);
    }
}
