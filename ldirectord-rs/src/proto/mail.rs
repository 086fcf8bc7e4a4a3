//! smtp / submission, pop / pops, imap / imaps and nntp checks (TLS for
//! pops and imaps is the transport's business).
//!
//! * smtp: greeting 2xx, `EHLO` (or `HELO` if refused) 2xx, `QUIT`
//!   (Net::SMTP->new + quit).
//! * pop: greeting `+OK`; with `login`, `USER`/`PASS` must be accepted.
//! * imap: greeting `* OK` / `* PREAUTH`; with `login`, `LOGIN` must succeed.
//! * nntp: the first bytes must start with `2`.

use super::lines::{Lines, Replies};
use super::{Outcome, Step};

/// Which protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Smtp,
    Pop,
    Imap,
    Nntp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Greeting,
    Ehlo,
    Helo,
    User,
    Pass,
    Login,
}

/// One mail-protocol check.
#[derive(Debug)]
pub struct Mail {
    kind: Kind,
    login: String,
    passwd: String,
    hostname: String,
    st: St,
    replies: Replies,
    lines: Lines,
}

/// An IMAP quoted string.
fn imap_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

impl Mail {
    pub fn new(kind: Kind, login: &str, passwd: &str, hostname: &str) -> Mail {
        Mail {
            kind,
            login: login.to_string(),
            passwd: passwd.to_string(),
            hostname: hostname.to_string(),
            st: St::Greeting,
            replies: Replies::default(),
            lines: Lines::default(),
        }
    }

    pub fn start(&mut self) -> Step {
        Step::Wait
    }

    pub fn data(&mut self, data: &[u8]) -> Step {
        match self.kind {
            Kind::Smtp => {
                self.replies.push(data);
                self.smtp()
            }
            Kind::Nntp => match data.first() {
                Some(b'2') => {
                    Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up(super::excerpt(data, 64)))
                }
                Some(_) => Step::Done(Outcome::down(super::excerpt(data, 64))),
                None => Step::Wait,
            },
            Kind::Pop | Kind::Imap => {
                self.lines.push(data);
                while let Some(l) = self.lines.next_line() {
                    let s = if self.kind == Kind::Pop {
                        self.pop(&l)
                    } else {
                        self.imap(&l)
                    };
                    if s != Step::Wait {
                        return s;
                    }
                }
                if self.lines.pending() > super::lines::MAX_LINE {
                    return Step::Done(Outcome::down("line too long"));
                }
                Step::Wait
            }
        }
    }

    pub fn eof(&mut self) -> Step {
        Step::Done(Outcome::down(match self.st {
            St::Greeting => "connection closed before the greeting",
            _ => "connection closed by the server",
        }))
    }

    fn smtp(&mut self) -> Step {
        let Some(code) = self.replies.next_reply() else {
            if self.replies.pending() > super::lines::MAX_LINE {
                return Step::Done(Outcome::down("line too long"));
            }
            return Step::Wait;
        };
        let text = self.replies.text.clone();
        let ok = (200..300).contains(&code);
        match self.st {
            St::Greeting if ok => {
                self.st = St::Ehlo;
                Step::Send(format!("EHLO {}\r\n", self.hostname).into_bytes())
            }
            St::Greeting => Step::Done(Outcome::down(text)),
            St::Ehlo if ok => Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up(text)),
            St::Ehlo => {
                self.st = St::Helo;
                Step::Send(format!("HELO {}\r\n", self.hostname).into_bytes())
            }
            St::Helo if ok => Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up(text)),
            _ => Step::Finish(b"QUIT\r\n".to_vec(), Outcome::down(text)),
        }
    }

    fn pop(&mut self, l: &str) -> Step {
        let ok = l.starts_with("+OK");
        if !ok {
            let quit = self.st != St::Greeting || l.starts_with("-ERR");
            let o = Outcome::down(l.to_string());
            return if quit {
                Step::Finish(b"QUIT\r\n".to_vec(), o)
            } else {
                Step::Done(o)
            };
        }
        match self.st {
            St::Greeting if !self.login.is_empty() => {
                self.st = St::User;
                Step::Send(format!("USER {}\r\n", self.login).into_bytes())
            }
            St::User => {
                self.st = St::Pass;
                Step::Send(format!("PASS {}\r\n", self.passwd).into_bytes())
            }
            _ => Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up(l.to_string())),
        }
    }

    fn imap(&mut self, l: &str) -> Step {
        match self.st {
            St::Greeting => {
                let up = l.len() > 2 && l.starts_with("* ") && {
                    let w = l[2..].split_whitespace().next().unwrap_or("");
                    w.eq_ignore_ascii_case("OK") || w.eq_ignore_ascii_case("PREAUTH")
                };
                if !up {
                    return Step::Done(Outcome::down(l.to_string()));
                }
                if self.login.is_empty() {
                    return Step::Finish(b"a1 LOGOUT\r\n".to_vec(), Outcome::up(l.to_string()));
                }
                self.st = St::Login;
                Step::Send(
                    format!(
                        "a1 LOGIN {} {}\r\n",
                        imap_quote(&self.login),
                        imap_quote(&self.passwd)
                    )
                    .into_bytes(),
                )
            }
            _ => {
                let Some(rest) = l.strip_prefix("a1 ") else {
                    return Step::Wait; // untagged data
                };
                let ok = rest
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("OK"));
                let o = if ok {
                    Outcome::up(l.to_string())
                } else {
                    Outcome::down(l.to_string())
                };
                Step::Finish(b"a2 LOGOUT\r\n".to_vec(), o)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(s: &Step) -> &str {
        match s {
            Step::Send(b) => std::str::from_utf8(b).unwrap(),
            other => panic!("expected Send, got {other:?}"),
        }
    }

    #[test]
    fn smtp_ehlo_then_quit() {
        let mut m = Mail::new(Kind::Smtp, "", "", "director");
        assert_eq!(m.start(), Step::Wait);
        assert_eq!(m.data(b"220-mx ESMTP\r\n"), Step::Wait);
        let s = m.data(b"220 mx ready\r\n");
        assert_eq!(send(&s), "EHLO director\r\n");
        let s = m.data(b"250-mx\r\n250 SIZE 1000\r\n");
        assert_eq!(s, Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up("250-mx")));
    }

    #[test]
    fn smtp_falls_back_to_helo_and_fails_on_bad_greeting() {
        let mut m = Mail::new(Kind::Smtp, "", "", "d");
        m.data(b"220 old\r\n");
        assert_eq!(send(&m.data(b"502 what\r\n")), "HELO d\r\n");
        assert_eq!(
            m.data(b"250 hi\r\n"),
            Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up("250 hi"))
        );
        let mut m = Mail::new(Kind::Smtp, "", "", "d");
        assert_eq!(
            m.data(b"554 go away\r\n"),
            Step::Done(Outcome::down("554 go away"))
        );
    }

    #[test]
    fn pop_with_and_without_login() {
        let mut m = Mail::new(Kind::Pop, "", "", "d");
        assert_eq!(
            m.data(b"+OK POP3 ready\r\n"),
            Step::Finish(b"QUIT\r\n".to_vec(), Outcome::up("+OK POP3 ready"))
        );
        let mut m = Mail::new(Kind::Pop, "u", "p", "d");
        assert_eq!(send(&m.data(b"+OK hi\r\n")), "USER u\r\n");
        assert_eq!(send(&m.data(b"+OK\r\n")), "PASS p\r\n");
        assert_eq!(
            m.data(b"-ERR bad password\r\n"),
            Step::Finish(b"QUIT\r\n".to_vec(), Outcome::down("-ERR bad password"))
        );
    }

    #[test]
    fn imap_login() {
        let mut m = Mail::new(Kind::Imap, "us\"er", "pw", "d");
        assert_eq!(
            send(&m.data(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")),
            "a1 LOGIN \"us\\\"er\" \"pw\"\r\n"
        );
        assert_eq!(m.data(b"* CAPABILITY IMAP4rev1\r\n"), Step::Wait);
        assert_eq!(
            m.data(b"a1 OK LOGIN completed\r\n"),
            Step::Finish(
                b"a2 LOGOUT\r\n".to_vec(),
                Outcome::up("a1 OK LOGIN completed")
            )
        );
        let mut m = Mail::new(Kind::Imap, "", "", "d");
        assert_eq!(
            m.data(b"* BYE overloaded\r\n"),
            Step::Done(Outcome::down("* BYE overloaded"))
        );
    }

    #[test]
    fn nntp_first_byte() {
        let mut m = Mail::new(Kind::Nntp, "", "", "d");
        assert!(matches!(m.data(b"200 news ready\r\n"), Step::Finish(_, o) if o.up));
        let mut m = Mail::new(Kind::Nntp, "", "", "d");
        assert_eq!(
            m.data(b"502 no permission\r\n"),
            Step::Done(Outcome::down("502 no permission"))
        );
    }
}
