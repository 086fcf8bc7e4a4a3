//! The sip negotiate check: an `OPTIONS` request (the Perl daemon's exact
//! header set, `login` as the URI) over the virtual service's protocol; up
//! if the status line is `SIP/2.0 200 OK`.

use std::net::SocketAddr;

use super::lines::Lines;
use super::{Outcome, Step};

/// One sip check.
#[derive(Debug)]
pub struct Sip {
    pub udp: bool,
    login: String,
    call_id: String,
    lines: Lines,
    status: Option<String>,
}

impl Sip {
    /// `nonce` makes the Call-ID (16 hex digits).
    pub fn new(login: &str, udp: bool, nonce: u64) -> Sip {
        Sip {
            udp,
            login: login.to_string(),
            call_id: format!("{nonce:016x}"),
            lines: Lines::default(),
            status: None,
        }
    }

    pub fn request(&self, local: SocketAddr) -> String {
        let l = &self.login;
        format!(
            "OPTIONS sip:{l} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKhjhs8ass877\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:{l}>\r\n\
             From: <sip:{l}>;tag=1928301774\r\n\
             Call-ID: {}\r\n\
             CSeq: 63104 OPTIONS\r\n\
             Contact: <sip:{l}>\r\n\
             Accept: application/sdp\r\n\
             Content-Length: 0\r\n\r\n",
            self.call_id
        )
    }

    pub fn start(&mut self, local: SocketAddr) -> Step {
        Step::Send(self.request(local).into_bytes())
    }

    pub fn data(&mut self, data: &[u8]) -> Step {
        self.lines.push(data);
        while let Some(l) = self.lines.next_line() {
            match &self.status {
                None => {
                    if !l.starts_with("SIP/2.0 200 OK") {
                        return Step::Done(Outcome::down(l));
                    }
                    self.status = Some(l);
                    if self.udp {
                        // a datagram is the whole reply
                        return Step::Done(Outcome::up(self.status.clone().unwrap()));
                    }
                }
                Some(s) => {
                    if l.is_empty() {
                        return Step::Done(Outcome::up(s.clone()));
                    }
                }
            }
        }
        if self.udp {
            // one datagram without a complete status line
            return Step::Done(Outcome::down("No OK"));
        }
        Step::Wait
    }

    pub fn eof(&mut self) -> Step {
        if let Some(l) = self.lines.rest() {
            if self.status.is_none() {
                return self.data(format!("{l}\n").as_bytes());
            }
        }
        match &self.status {
            Some(s) => Step::Done(Outcome::up(s.clone())),
            None => Step::Done(Outcome::down("No OK")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_request_and_ok() {
        let mut s = Sip::new("ldirectord@director", false, 0xabc);
        let Step::Send(req) = s.start("10.0.0.1:40000".parse().unwrap()) else {
            panic!()
        };
        let req = String::from_utf8(req).unwrap();
        assert!(req.starts_with("OPTIONS sip:ldirectord@director SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:40000;branch=z9hG4bKhjhs8ass877\r\n"));
        assert!(req.contains("Call-ID: 0000000000000abc\r\n"));
        assert!(req.ends_with("Content-Length: 0\r\n\r\n"));
        assert_eq!(s.data(b"SIP/2.0 200 OK\r\nVia: x\r\n"), Step::Wait);
        assert_eq!(s.data(b"\r\n"), Step::Done(Outcome::up("SIP/2.0 200 OK")));
    }

    #[test]
    fn udp_reply_and_errors() {
        let mut s = Sip::new("u@h", true, 1);
        s.start("10.0.0.1:5060".parse().unwrap());
        assert_eq!(
            s.data(b"SIP/2.0 200 OK\r\nCSeq: 63104 OPTIONS\r\n\r\n"),
            Step::Done(Outcome::up("SIP/2.0 200 OK"))
        );
        let mut s = Sip::new("u@h", true, 1);
        assert_eq!(
            s.data(b"SIP/2.0 404 Not Found\r\n\r\n"),
            Step::Done(Outcome::down("SIP/2.0 404 Not Found"))
        );
        let mut s = Sip::new("u@h", false, 1);
        assert_eq!(s.eof(), Step::Done(Outcome::down("No OK")));
    }
}
