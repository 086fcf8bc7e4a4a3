//! One running check on the wire: a TCP connection (optionally TLS, plus
//! the FTP data connection), a UDP exchange, a ping or an external command.
//! The runner owns the tasks and feeds them readiness events; a task turns
//! them into [`Dialog`] calls and reports its [`Outcome`] when done.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Child;
use std::sync::Arc;
use std::time::Instant;

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use rustls::{ClientConfig, ClientConnection};

use crate::engine::Run;
use crate::proto::{Dialog, Outcome, Step};

/// `Connection refused` without Rust's ` (os error 111)` suffix.
pub fn err_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let s = io::Error::from_raw_os_error(n).to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

/// What an event said about a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
}

impl Ready {
    pub const ALL: Ready = Ready {
        readable: true,
        writable: true,
    };
}

/// Sets SO_LINGER to 0: the close that follows sends RST (no FIN exchange,
/// no TIME_WAIT), as load-balancer health checkers commonly do once they
/// have the whole answer.
pub fn abort_on_close(sock: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::Linger, &l);
}

/// Sub-token of a stream task: the control connection or the data one.
pub const SUB_MAIN: usize = 0;
pub const SUB_DATA: usize = 1;

/// How failures are worded: LWP's `500 Can't connect to ...` for http(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    Http,
    Plain,
}

/// A TCP check (connect, or a dialog over plain TCP or TLS).
pub struct StreamTask {
    pub addr: SocketAddr,
    pub sock: TcpStream,
    pub connected: bool,
    pub want_tls: bool,
    pub tls_cfg: Option<Arc<ClientConfig>>,
    pub sni: Option<rustls::pki_types::ServerName<'static>>,
    pub tls: Option<ClientConnection>,
    pub dialog: Option<Dialog>,
    /// plaintext waiting to be written
    pub out: Vec<u8>,
    pub shutdown_after: bool,
    pub data: Option<DataConn>,
    pub wording: Wording,
    /// an idle kept-alive connection taken from the pool
    pub reused: bool,
    /// bytes have come back on this connection during this check
    pub got_bytes: bool,
    /// when this TCP connection was opened
    pub conn_since: Instant,
}

/// The FTP data connection.
pub struct DataConn {
    pub sock: TcpStream,
    pub connected: bool,
}

/// A UDP exchange (dns, sip, simpletcp over udp).
pub struct UdpTask {
    pub sock: UdpSocket,
    pub dialog: Dialog,
}

/// A ping: `count` attempts, one outstanding at a time.
pub struct PingTask {
    pub dst: IpAddr,
    pub seq: u16,
    pub attempt: u32,
    pub count: u32,
}

/// An external check command.
pub struct ExtTask {
    pub child: Child,
    /// pidfd (readable when the child exits); `None`: polled
    pub pidfd: Option<OwnedFd>,
    pub command: String,
}

pub enum Kind {
    Stream(Box<StreamTask>),
    Udp(Box<UdpTask>),
    Ping(PingTask),
    External(ExtTask),
}

pub struct Task {
    pub check: usize,
    pub run: Run,
    pub started: Instant,
    pub deadline: Instant,
    pub timeout_secs: u64,
    pub gen: u32,
    pub kind: Kind,
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // we take ownership of the fd only when it is valid.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What an event on a stream task led to.
pub enum Progress {
    Pending,
    Done(Outcome),
    /// open the FTP data connection to this port
    OpenData(u16),
    /// reconnect (HTTP redirect) to this port, TLS or not
    Reconnect(u16, bool),
    /// a reused connection turned out closed: run again on a fresh one
    Retry,
}

impl StreamTask {
    fn fail(&self, what: &str) -> Outcome {
        match self.wording {
            Wording::Http => Outcome::down(format!("500 Can't connect to {} ({what})", self.addr)),
            Wording::Plain => Outcome::down(format!("Can't connect to {}: {what}", self.addr)),
        }
    }

    /// Message for a check that ran out of time.
    pub fn timeout_msg(&self, secs: u64) -> Outcome {
        if !self.connected {
            return self.fail(&format!("connect timeout after {secs}s"));
        }
        match self.wording {
            Wording::Http => Outcome::down(format!("500 read timeout after {secs}s")),
            Wording::Plain => Outcome::down(format!("timeout after {secs}s")),
        }
    }

    /// Checks a connecting socket on a readiness event: `Ok(true)`
    /// connected, `Ok(false)` not yet. A pending error is the connect's
    /// failure; otherwise writability means the handshake completed.
    fn check_connected(sock: &TcpStream, ready: Ready) -> io::Result<bool> {
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        Ok(ready.writable || ready.readable)
    }

    /// Handles readiness of the main connection.
    pub fn on_main(&mut self, buf: &mut [u8], ready: Ready) -> Progress {
        if !self.connected {
            match Self::check_connected(&self.sock, ready) {
                Ok(false) => return Progress::Pending,
                Err(e) => return Progress::Done(self.fail(&err_text(&e))),
                Ok(true) => {}
            }
            self.connected = true;
            if self.dialog.is_none() {
                return Progress::Done(Outcome::up(format!("Connected to {}", self.addr)));
            }
            if self.want_tls {
                let cfg = self.tls_cfg.clone().expect("TLS tasks carry a config");
                let name = self
                    .sni
                    .clone()
                    .unwrap_or(rustls::pki_types::ServerName::IpAddress(
                        self.addr.ip().into(),
                    ));
                match ClientConnection::new(cfg, name) {
                    Ok(c) => self.tls = Some(c),
                    Err(e) => return Progress::Done(Outcome::down(format!("TLS: {e}"))),
                }
            }
            // only SIP needs our address (Via:); spare the syscall otherwise
            let local = match self.dialog {
                Some(Dialog::Sip(_)) => self.sock.local_addr().ok(),
                _ => None,
            }
            .unwrap_or_else(|| SocketAddr::new(self.addr.ip(), 0));
            let step = self.dialog.as_mut().expect("checked above").start(local);
            if let Some(p) = self.step(step) {
                return p;
            }
        }
        self.pump(buf, ready.readable)
    }

    /// Applies a dialog step; `Some` when it ends or redirects the task.
    fn step(&mut self, step: Step) -> Option<Progress> {
        match step {
            Step::Send(b) => self.queue(&b),
            Step::SendAndShutdown(b) => {
                self.queue(&b);
                self.shutdown_after = true;
            }
            Step::Wait => {}
            Step::OpenData(port) => return Some(Progress::OpenData(port)),
            Step::Reconnect { port, tls } => return Some(Progress::Reconnect(port, tls)),
            Step::Finish(b, o) => {
                self.queue(&b);
                let _ = self.flush();
                return Some(Progress::Done(o));
            }
            Step::Done(o) => return Some(Progress::Done(o)),
        }
        None
    }

    fn queue(&mut self, b: &[u8]) {
        match &mut self.tls {
            Some(t) => {
                let _ = t.writer().write_all(b);
            }
            None => self.out.extend_from_slice(b),
        }
    }

    /// Writes what is pending; `Err` on a socket error.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            Some(t) => {
                while t.wants_write() {
                    match t.write_tls(&mut self.sock) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            }
            None => {
                while !self.out.is_empty() {
                    match self.sock.write(&self.out) {
                        Ok(n) => {
                            self.out.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if self.shutdown_after {
                    self.shutdown_after = false;
                    let _ = self.sock.shutdown(Shutdown::Write);
                }
            }
        }
        Ok(())
    }

    /// Starts the dialog on a connection kept from an earlier check.
    pub fn start_reused(&mut self, buf: &mut [u8]) -> Progress {
        let local = SocketAddr::new(self.addr.ip(), 0);
        let step = self
            .dialog
            .as_mut()
            .expect("reused tasks have a dialog")
            .start(local);
        if let Some(p) = self.step(step) {
            return p;
        }
        self.pump(buf, false)
    }

    /// Whether the connection can serve the next check (HTTP keep-alive).
    pub fn reusable(&self) -> bool {
        self.connected
            && self.tls.is_none()
            && self.data.is_none()
            && self.out.is_empty()
            && matches!(&self.dialog, Some(Dialog::Http(h)) if h.reusable())
    }

    /// Writes, then (if the socket is readable) reads until it would block,
    /// feeding the dialog.
    fn pump(&mut self, buf: &mut [u8], readable: bool) -> Progress {
        loop {
            if let Err(e) = self.flush() {
                if self.reused && !self.got_bytes {
                    return Progress::Retry;
                }
                return self.io_failed(&e);
            }
            if !readable {
                return Progress::Pending;
            }
            // read what is there
            let got = if self.tls.is_some() {
                self.read_tls(buf)
            } else {
                match self.sock.read(buf) {
                    Ok(0) => ReadResult::Eof,
                    Ok(n) => ReadResult::Data(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadResult::Block,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => ReadResult::Err(e),
                }
            };
            let dialog = self.dialog.as_mut().expect("pumped tasks have a dialog");
            if self.reused && !self.got_bytes && matches!(got, ReadResult::Eof | ReadResult::Err(_))
            {
                // the server closed the idle connection before our request
                return Progress::Retry;
            }
            let step = match got {
                ReadResult::Block => return Progress::Pending,
                ReadResult::Data(n) => {
                    self.got_bytes = true;
                    dialog.data(&buf[..n])
                }
                ReadResult::Eof => {
                    let s = dialog.eof();
                    if matches!(s, Step::Wait | Step::Send(_) | Step::SendAndShutdown(_)) {
                        return Progress::Done(Outcome::down("connection closed by the server"));
                    }
                    s
                }
                ReadResult::Err(e) => return self.io_failed(&e),
                ReadResult::Tls(msg) => return Progress::Done(Outcome::down(msg)),
            };
            if let Some(p) = self.step(step) {
                return p;
            }
        }
    }

    fn io_failed(&self, e: &io::Error) -> Progress {
        Progress::Done(match self.wording {
            Wording::Http => Outcome::down(format!("500 {}", err_text(e))),
            Wording::Plain => Outcome::down(err_text(e)),
        })
    }

    fn read_tls(&mut self, buf: &mut [u8]) -> ReadResult {
        let t = self.tls.as_mut().expect("tls");
        loop {
            // plaintext already decrypted?
            match t.reader().read(buf) {
                Ok(0) => return ReadResult::Eof,
                Ok(n) => return ReadResult::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return ReadResult::Eof,
                Err(e) => return ReadResult::Err(e),
            }
            match t.read_tls(&mut self.sock) {
                Ok(0) => return ReadResult::Eof,
                Ok(_) => {
                    if let Err(e) = t.process_new_packets() {
                        // tell the server why, then give up
                        let _ = t.write_tls(&mut self.sock);
                        return ReadResult::Tls(format!("TLS: {e}"));
                    }
                    if t.wants_write() {
                        while t.wants_write() {
                            match t.write_tls(&mut self.sock) {
                                Ok(_) => {}
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return ReadResult::Err(e),
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadResult::Block,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return ReadResult::Err(e),
            }
        }
    }

    /// Handles readiness of the FTP data connection.
    pub fn on_data(&mut self, buf: &mut [u8], ready: Ready) -> Progress {
        let Some(d) = self.data.as_mut() else {
            return Progress::Pending;
        };
        if !d.connected {
            match Self::check_connected(&d.sock, ready) {
                Ok(false) => return Progress::Pending,
                Err(e) => {
                    return Progress::Done(Outcome::down(format!(
                        "data connection: {}",
                        err_text(&e)
                    )))
                }
                Ok(true) => {
                    d.connected = true;
                    let step = self.dialog.as_mut().expect("ftp dialog").data_connected();
                    if let Some(p) = self.step(step) {
                        return p;
                    }
                    if let Err(e) = self.flush() {
                        return self.io_failed(&e);
                    }
                }
            }
        }
        loop {
            let d = self.data.as_mut().expect("data connection");
            let step = match d.sock.read(buf) {
                Ok(0) => {
                    self.data = None;
                    self.dialog.as_mut().expect("ftp dialog").data_channel_eof()
                }
                Ok(n) => self
                    .dialog
                    .as_mut()
                    .expect("ftp dialog")
                    .data_channel(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Progress::Done(Outcome::down(format!(
                        "data connection: {}",
                        err_text(&e)
                    )))
                }
            };
            if let Some(p) = self.step(step) {
                return p;
            }
            if self.data.is_none() {
                return self.pump(buf, true);
            }
        }
    }

    /// Registers the main socket (a reused one is moved from the pool's
    /// token to the task's).
    pub fn register(&mut self, reg: &Registry, token: Token) -> io::Result<()> {
        let i = Interest::READABLE | Interest::WRITABLE;
        if self.reused {
            reg.reregister(&mut self.sock, token, i)
        } else {
            reg.register(&mut self.sock, token, i)
        }
    }
}

enum ReadResult {
    Data(usize),
    Eof,
    Block,
    Err(io::Error),
    Tls(String),
}

impl UdpTask {
    /// Starts the exchange (sends the first datagram).
    pub fn start(&mut self) -> Progress {
        let local = self
            .sock
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let step = self.dialog.start(local);
        self.step(step)
    }

    fn step(&mut self, step: Step) -> Progress {
        match step {
            Step::Send(b) | Step::SendAndShutdown(b) => match self.sock.send(&b) {
                Ok(_) => Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Progress::Pending,
                Err(e) => Progress::Done(Outcome::down(err_text(&e))),
            },
            Step::Finish(b, o) => {
                let _ = self.sock.send(&b);
                Progress::Done(o)
            }
            Step::Done(o) => Progress::Done(o),
            _ => Progress::Pending,
        }
    }

    pub fn on_ready(&mut self, buf: &mut [u8]) -> Progress {
        loop {
            match self.sock.recv(buf) {
                Ok(n) => {
                    let step = self.dialog.data(&buf[..n]);
                    if let p @ Progress::Done(_) = self.step(step) {
                        return p;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Progress::Done(Outcome::down(err_text(&e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_without_suffix() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(err_text(&e), "Connection refused");
        assert_eq!(err_text(&io::Error::other("x")), "x");
    }
}
