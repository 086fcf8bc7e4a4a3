//! The simpletcp negotiate check: send `request` (leading `/` removed,
//! `\n` written as a newline), shut the write side down, up as soon as a
//! line of the reply matches `receive` (with no receive pattern: as soon as
//! a line arrives).

use std::sync::Arc;

use regex::bytes::Regex;

use super::lines::Lines;
use super::{Outcome, Step};

/// One simpletcp check.
#[derive(Debug)]
pub struct SimpleTcp {
    pub udp: bool,
    request: Vec<u8>,
    receive: Option<Arc<Regex>>,
    lines: Lines,
}

impl SimpleTcp {
    pub fn new(request: &str, receive: Option<Arc<Regex>>, udp: bool) -> SimpleTcp {
        let r = request.strip_prefix('/').unwrap_or(request);
        SimpleTcp {
            udp,
            request: r.replace("\\n", "\n").into_bytes(),
            receive,
            lines: Lines::default(),
        }
    }

    pub fn start(&mut self) -> Step {
        if self.udp {
            Step::Send(self.request.clone())
        } else {
            Step::SendAndShutdown(self.request.clone())
        }
    }

    fn matches(&self, line: &str) -> bool {
        match &self.receive {
            Some(re) => re.is_match(line.as_bytes()),
            None => true,
        }
    }

    pub fn data(&mut self, data: &[u8]) -> Step {
        self.lines.push(data);
        if self.udp {
            // a datagram ends its last line
            self.lines.push(b"\n");
        }
        while let Some(l) = self.lines.next_line() {
            if self.matches(&l) {
                return Step::Done(Outcome::up(l));
            }
        }
        if self.lines.pending() > super::lines::MAX_LINE {
            let l = self.lines.rest().unwrap_or_default();
            if self.matches(&l) {
                return Step::Done(Outcome::up(l));
            }
        }
        Step::Wait
    }

    /// The server closed: a last unterminated line still counts.
    pub fn finish_eof(&mut self) -> Step {
        if let Some(l) = self.lines.rest() {
            if self.matches(&l) {
                return Step::Done(Outcome::up(l));
            }
        }
        Step::Done(Outcome::down("No OK"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_line_match() {
        let re = Arc::new(Regex::new("^OK").unwrap());
        let mut s = SimpleTcp::new("/PING\\n", Some(re), false);
        assert_eq!(s.start(), Step::SendAndShutdown(b"PING\n".to_vec()));
        assert_eq!(s.data(b"hello\nO"), Step::Wait);
        assert_eq!(s.data(b"K fine\n"), Step::Done(Outcome::up("OK fine")));
    }

    #[test]
    fn last_line_without_newline_counts_at_eof() {
        let re = Arc::new(Regex::new("ready").unwrap());
        let mut s = SimpleTcp::new("/", Some(re.clone()), false);
        assert_eq!(s.start(), Step::SendAndShutdown(vec![]));
        assert_eq!(s.data(b"ready"), Step::Wait);
        assert_eq!(s.finish_eof(), Step::Done(Outcome::up("ready")));
        let mut s = SimpleTcp::new("/", Some(re), false);
        s.data(b"nope\n");
        assert_eq!(s.finish_eof(), Step::Done(Outcome::down("No OK")));
    }
}
