//! The ftp negotiate check (Net::FTP in the Perl daemon): log in (default
//! `anonymous` / `ldirectord@HOSTNAME`), `CWD /`, `TYPE I`, passive mode,
//! `RETR request`; up if the transfer completes and the file matches the
//! receive pattern (an empty pattern accepts any content).
//!
//! The data connection goes to the real server's address with the port of
//! the `227` / `229` reply (the address in a `227` reply is ignored: behind
//! NAT it is often wrong).

use std::sync::Arc;

use regex::bytes::Regex;

use super::lines::Replies;
use super::{excerpt, Outcome, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Greeting,
    User,
    Pass,
    Cwd,
    Type,
    Pasv,
    DataConnecting,
    Retr,
}

/// One ftp check.
#[derive(Debug)]
pub struct Ftp {
    login: String,
    passwd: String,
    path: String,
    receive: Option<Arc<Regex>>,
    /// Use `EPSV` (IPv6 servers) instead of `PASV`.
    epsv: bool,
    st: St,
    replies: Replies,
    content: Vec<u8>,
    data_eof: bool,
    transfer_ok: Option<String>,
}

impl Ftp {
    pub fn new(
        login: &str,
        passwd: &str,
        path: &str,
        receive: Option<Arc<Regex>>,
        epsv: bool,
    ) -> Ftp {
        Ftp {
            login: login.into(),
            passwd: passwd.into(),
            path: path.into(),
            receive,
            epsv,
            st: St::Greeting,
            replies: Replies::default(),
            content: Vec::new(),
            data_eof: false,
            transfer_ok: None,
        }
    }

    pub fn start(&mut self) -> Step {
        Step::Wait
    }

    fn quit(o: Outcome) -> Step {
        Step::Finish(b"QUIT\r\n".to_vec(), o)
    }

    pub fn data(&mut self, data: &[u8]) -> Step {
        self.replies.push(data);
        loop {
            let Some(code) = self.replies.next_reply() else {
                if self.replies.pending() > super::lines::MAX_LINE {
                    return Step::Done(Outcome::down("line too long"));
                }
                return Step::Wait;
            };
            let text = self.replies.text.clone();
            let step = match self.st {
                St::Greeting => match code {
                    120 => continue,
                    200..=299 => {
                        self.st = St::User;
                        Step::Send(format!("USER {}\r\n", self.login).into_bytes())
                    }
                    _ => Step::Done(Outcome::down(text)),
                },
                St::User => match code {
                    230 => self.cwd(),
                    331 => {
                        self.st = St::Pass;
                        Step::Send(format!("PASS {}\r\n", self.passwd).into_bytes())
                    }
                    _ => Self::quit(Outcome::down(text)),
                },
                St::Pass => match code {
                    230 | 202 => self.cwd(),
                    _ => Self::quit(Outcome::down(text)),
                },
                St::Cwd => {
                    self.st = St::Type;
                    Step::Send(b"TYPE I\r\n".to_vec())
                }
                St::Type => {
                    self.st = St::Pasv;
                    Step::Send(if self.epsv {
                        b"EPSV\r\n".to_vec()
                    } else {
                        b"PASV\r\n".to_vec()
                    })
                }
                St::Pasv => match parse_passive_port(code, &text) {
                    Some(port) => {
                        self.st = St::DataConnecting;
                        Step::OpenData(port)
                    }
                    None => Self::quit(Outcome::down(text)),
                },
                St::DataConnecting => Self::quit(Outcome::down(text)),
                St::Retr => match code {
                    125 | 150 => continue,
                    226 | 250 => {
                        self.transfer_ok = Some(text);
                        self.maybe_done()
                    }
                    _ => Self::quit(Outcome::down(text)),
                },
            };
            return step;
        }
    }

    fn cwd(&mut self) -> Step {
        self.st = St::Cwd;
        Step::Send(b"CWD /\r\n".to_vec())
    }

    pub fn data_connected(&mut self) -> Step {
        self.st = St::Retr;
        Step::Send(format!("RETR {}\r\n", self.path).into_bytes())
    }

    pub fn data_channel(&mut self, data: &[u8]) -> Step {
        let room = super::http::MAX_BODY.saturating_sub(self.content.len());
        self.content
            .extend_from_slice(&data[..data.len().min(room)]);
        Step::Wait
    }

    pub fn data_channel_eof(&mut self) -> Step {
        self.data_eof = true;
        self.maybe_done()
    }

    fn maybe_done(&mut self) -> Step {
        let (true, Some(text)) = (self.data_eof, &self.transfer_ok) else {
            return Step::Wait;
        };
        let o = match &self.receive {
            Some(re) if !re.is_match(&self.content) => Outcome::down(format!(
                "{} but content did not match: {}",
                text,
                excerpt(&self.content, 80)
            )),
            _ => Outcome::up(text.clone()),
        };
        Self::quit(o)
    }

    pub fn eof(&mut self) -> Step {
        Step::Done(Outcome::down("connection closed by the server"))
    }
}

/// The port of a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` or a
/// `229 Entering Extended Passive Mode (|||port|)` reply.
pub fn parse_passive_port(code: u16, text: &str) -> Option<u16> {
    match code {
        227 => {
            // the numbers after the reply code
            let body = text.get(3..)?;
            let nums: Vec<u16> = body
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            if nums.len() < 6 {
                return None;
            }
            let (p1, p2) = (nums[4], nums[5]);
            (p1 < 256 && p2 < 256).then(|| p1 * 256 + p2)
        }
        229 => {
            let open = text.find('(')?;
            let inner = &text[open + 1..text[open..].find(')')? + open];
            let d = inner.chars().next()?;
            let parts: Vec<&str> = inner.split(d).collect();
            parts.get(3)?.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(s: Step) -> String {
        match s {
            Step::Send(b) => String::from_utf8(b).unwrap(),
            other => panic!("expected Send, got {other:?}"),
        }
    }

    #[test]
    fn passive_replies() {
        assert_eq!(
            parse_passive_port(227, "227 Entering Passive Mode (10,0,0,2,195,80)."),
            Some(195 * 256 + 80)
        );
        assert_eq!(
            parse_passive_port(229, "229 Entering Extended Passive Mode (|||50000|)"),
            Some(50000)
        );
        assert_eq!(parse_passive_port(227, "227 nonsense"), None);
    }

    #[test]
    fn anonymous_retrieval() {
        let re = Arc::new(Regex::new("welcome").unwrap());
        let mut f = Ftp::new("anonymous", "ldirectord@d", "/welcome.msg", Some(re), false);
        assert_eq!(f.start(), Step::Wait);
        assert_eq!(f.data(b"120 soon\r\n"), Step::Wait);
        assert_eq!(send(f.data(b"220 FTP ready\r\n")), "USER anonymous\r\n");
        assert_eq!(
            send(f.data(b"331 password please\r\n")),
            "PASS ldirectord@d\r\n"
        );
        assert_eq!(send(f.data(b"230 logged in\r\n")), "CWD /\r\n");
        assert_eq!(send(f.data(b"250 ok\r\n")), "TYPE I\r\n");
        assert_eq!(send(f.data(b"200 binary\r\n")), "PASV\r\n");
        assert_eq!(
            f.data(b"227 Entering Passive Mode (10,0,0,2,4,1)\r\n"),
            Step::OpenData(1025)
        );
        assert_eq!(send(f.data_connected()), "RETR /welcome.msg\r\n");
        assert_eq!(f.data(b"150 opening\r\n"), Step::Wait);
        assert_eq!(f.data_channel(b"welcome to ftp"), Step::Wait);
        assert_eq!(f.data(b"226 done\r\n"), Step::Wait);
        assert_eq!(
            f.data_channel_eof(),
            Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up("226 done"))
        );
    }

    #[test]
    fn failed_login_and_missing_file() {
        let mut f = Ftp::new("u", "p", "/x", None, false);
        f.data(b"220 hi\r\n");
        f.data(b"331 pw\r\n");
        assert_eq!(
            f.data(b"530 Login incorrect\r\n"),
            Step::Finish(b"QUIT\r\n".to_vec(), Outcome::down("530 Login incorrect"))
        );
        let mut f = Ftp::new("u", "p", "/x", None, true);
        f.data(b"220 hi\r\n");
        f.data(b"230 in\r\n");
        f.data(b"550 no cwd\r\n");
        assert_eq!(send(f.data(b"200 ok\r\n")), "EPSV\r\n");
        assert_eq!(f.data(b"229 ok (|||2121|)\r\n"), Step::OpenData(2121));
        f.data_connected();
        assert_eq!(
            f.data(b"550 No such file\r\n"),
            Step::Finish(b"QUIT\r\n".to_vec(), Outcome::down("550 No such file"))
        );
    }
}
