//! Line splitting for the text protocols (CRLF or LF), with a length cap so
//! a misbehaving server cannot make a check grow without bound.

/// Longest line kept; longer lines are cut (the rest is dropped).
pub const MAX_LINE: usize = 8192;

/// Accumulates bytes and yields complete lines without their terminator.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete line, if any.
    pub fn next_line(&mut self) -> Option<String> {
        let pos = self.buf.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        line.truncate(MAX_LINE);
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    /// What is left after the last newline (a final unterminated line).
    pub fn rest(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            return None;
        }
        let mut line = std::mem::take(&mut self.buf);
        line.truncate(MAX_LINE);
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    /// Bytes waiting without a newline (to cap a line that never ends).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// A complete reply of the `NNN text` / `NNN-continued` kind (SMTP, FTP):
/// returns the code once the last line of a reply has arrived.
#[derive(Debug, Default)]
pub struct Replies {
    lines: Lines,
    /// First line of a reply still being read.
    first: Option<String>,
    /// Text of the last complete reply (first line).
    pub text: String,
}

impl Replies {
    pub fn push(&mut self, data: &[u8]) {
        self.lines.push(data);
    }

    /// The next complete reply code, or `None` if more input is needed.
    /// A line that does not start with three digits is a protocol error
    /// (returned as code 0).
    pub fn next_reply(&mut self) -> Option<u16> {
        loop {
            let line = self.lines.next_line()?;
            if self.first.is_none() {
                self.first = Some(line.clone());
            }
            let b = line.as_bytes();
            let code = if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
                (b[0] - b'0') as u16 * 100 + (b[1] - b'0') as u16 * 10 + (b[2] - b'0') as u16
            } else {
                self.first = None;
                self.text = line;
                return Some(0);
            };
            // last line of a reply: "NNN " or "NNN" alone
            if b.len() == 3 || b[3] == b' ' {
                self.text = self.first.take().unwrap_or_default();
                return Some(code);
            }
        }
    }

    pub fn pending(&self) -> usize {
        self.lines.pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_crlf_and_lf() {
        let mut l = Lines::default();
        l.push(b"a\r\nb\nc");
        assert_eq!(l.next_line().as_deref(), Some("a"));
        assert_eq!(l.next_line().as_deref(), Some("b"));
        assert_eq!(l.next_line(), None);
        l.push(b"d\r\n");
        assert_eq!(l.next_line().as_deref(), Some("cd"));
        assert_eq!(l.rest(), None);
    }

    #[test]
    fn multiline_replies() {
        let mut r = Replies::default();
        r.push(b"220-mail.example.com ESMTP\r\n220-more\r\n");
        assert_eq!(r.next_reply(), None);
        r.push(b"220 ready\r\n250 ok\r\n");
        assert_eq!(r.next_reply(), Some(220));
        assert_eq!(r.text, "220-mail.example.com ESMTP");
        assert_eq!(r.next_reply(), Some(250));
        r.push(b"garbage\r\n");
        assert_eq!(r.next_reply(), Some(0));
    }
}
