//! The negotiate checks as pure dialogs: bytes from the real server in,
//! the next thing to send (or the verdict) out. No sockets here; the event
//! loop ([`crate::io`]) carries the bytes, TLS included, and enforces the
//! check's deadline.

pub mod dns;
pub mod ftp;
pub mod http;
pub mod lines;
pub mod mail;
pub mod simpletcp;
pub mod sip;

use std::net::SocketAddr;

/// The verdict of a check and the message the monitor file records
/// (`200 OK`, `500 Can't connect to ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub up: bool,
    pub msg: String,
}

impl Outcome {
    pub fn up(msg: impl Into<String>) -> Outcome {
        Outcome {
            up: true,
            msg: msg.into(),
        }
    }
    pub fn down(msg: impl Into<String>) -> Outcome {
        Outcome {
            up: false,
            msg: msg.into(),
        }
    }
}

/// What the dialog wants the transport to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes (a datagram on UDP), then wait for input.
    Send(Vec<u8>),
    /// Send these bytes, then shut the write half down (stream only).
    SendAndShutdown(Vec<u8>),
    /// Wait for more input.
    Wait,
    /// FTP passive mode: open a second TCP connection to this port on the
    /// real server and call [`Dialog::data_connected`] once it is up.
    OpenData(u16),
    /// Follow an HTTP redirect: close this connection, open a new one to
    /// `port` (TLS if `tls`), and call [`Dialog::start`] again.
    Reconnect { port: u16, tls: bool },
    /// Send these bytes (best effort, e.g. QUIT) and finish with the outcome.
    Finish(Vec<u8>, Outcome),
    /// The check is over.
    Done(Outcome),
}

/// A negotiate dialog (one per check run).
#[derive(Debug)]
pub enum Dialog {
    Http(http::Http),
    Mail(mail::Mail),
    Ftp(ftp::Ftp),
    Dns(dns::Dns),
    Sip(sip::Sip),
    Simpletcp(simpletcp::SimpleTcp),
}

impl Dialog {
    /// The connection is up; `local` is our end (SIP puts it in `Via:`).
    pub fn start(&mut self, local: SocketAddr) -> Step {
        match self {
            Dialog::Http(d) => d.start(),
            Dialog::Mail(d) => d.start(),
            Dialog::Ftp(d) => d.start(),
            Dialog::Dns(d) => d.start(),
            Dialog::Sip(d) => d.start(local),
            Dialog::Simpletcp(d) => d.start(),
        }
    }

    /// Bytes (or one datagram) from the server.
    pub fn data(&mut self, data: &[u8]) -> Step {
        match self {
            Dialog::Http(d) => d.data(data),
            Dialog::Mail(d) => d.data(data),
            Dialog::Ftp(d) => d.data(data),
            Dialog::Dns(d) => d.data(data),
            Dialog::Sip(d) => d.data(data),
            Dialog::Simpletcp(d) => d.data(data),
        }
    }

    /// The server closed the connection.
    pub fn eof(&mut self) -> Step {
        match self {
            Dialog::Http(d) => d.eof(),
            Dialog::Mail(d) => d.eof(),
            Dialog::Ftp(d) => d.eof(),
            Dialog::Dns(_) => Step::Done(Outcome::down("connection closed without an answer")),
            Dialog::Sip(d) => d.eof(),
            Dialog::Simpletcp(d) => d.finish_eof(),
        }
    }

    /// FTP: the data connection is up.
    pub fn data_connected(&mut self) -> Step {
        match self {
            Dialog::Ftp(d) => d.data_connected(),
            _ => Step::Wait,
        }
    }

    /// FTP: bytes on the data connection.
    pub fn data_channel(&mut self, data: &[u8]) -> Step {
        match self {
            Dialog::Ftp(d) => d.data_channel(data),
            _ => Step::Wait,
        }
    }

    /// FTP: the data connection was closed by the server.
    pub fn data_channel_eof(&mut self) -> Step {
        match self {
            Dialog::Ftp(d) => d.data_channel_eof(),
            _ => Step::Wait,
        }
    }

    /// Whether the dialog speaks over UDP datagrams.
    pub fn is_datagram(&self) -> bool {
        match self {
            Dialog::Dns(d) => d.udp,
            Dialog::Sip(d) => d.udp,
            Dialog::Simpletcp(d) => d.udp,
            _ => false,
        }
    }
}

/// `%`, `|`, CR and LF %-escaped, as the Perl daemon writes monitor lines.
pub fn escape_log(msg: &str) -> String {
    let mut o = String::with_capacity(msg.len());
    for c in msg.chars() {
        match c {
            '%' | '|' | '\r' | '\n' => o.push_str(&format!("%{:02x}", c as u32)),
            _ => o.push(c),
        }
    }
    o
}

/// A short printable excerpt of server bytes for log messages.
pub fn excerpt(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(max)]);
    let mut s = s.trim_end().to_string();
    if b.len() > max {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_escaping() {
        assert_eq!(escape_log("a|b%c\r\nd"), "a%7cb%25c%0d%0ad");
    }
}
