//! A synchronous rtnetlink (`NETLINK_ROUTE`) socket: one request out, the
//! replies (a dump, or one ACK/NACK) in.
//!
//! The typed operations on top of it live in [`crate::addr`], [`crate::link`]
//! and [`crate::route`]; they are methods on [`Rtnl`] so one process opens one
//! socket. The socket talks to the network namespace of the thread that
//! opened it.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Errors of the rtnetlink, ARP and sysctl helpers.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A system call failed (socket, send, recv, /proc/sys access...).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The kernel answered a request with an error (`-errno`).
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A reply could not be decoded.
    #[error("{what}: cannot decode netlink reply: {detail}")]
    Decode { what: String, detail: String },
    /// An interface (or other named object) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An argument is not acceptable (bad name, prefix out of range, ...).
    #[error("{0}")]
    Invalid(String),
}

impl NetError {
    /// The errno of a kernel or system-call error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Io { source, .. } | NetError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> NetError {
        NetError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result type of the kernel plumbing modules.
pub type Result<T> = std::result::Result<T, NetError>;

/// An open rtnetlink socket.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl> {
        let mut sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| NetError::io("open rtnetlink socket", e))?;
        sock.bind_auto()
            .map_err(|e| NetError::io("bind rtnetlink socket", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| NetError::io("connect rtnetlink socket", e))?;
        // Extended ACKs give better messages on some errors; failure is harmless.
        let _ = sock.set_ext_ack(true);
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends a dump request and collects every message of the reply.
    pub(crate) fn dump(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.exchange(what, msg, NLM_F_REQUEST | NLM_F_DUMP)
    }

    /// Sends a request that changes something and waits for its ACK.
    /// `flags` are added to `NLM_F_REQUEST | NLM_F_ACK` (CREATE, EXCL, ...).
    pub(crate) fn change(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<()> {
        self.exchange(what, msg, NLM_F_REQUEST | NLM_F_ACK | flags)
            .map(|_| ())
    }

    /// Sends a request that returns one object (e.g. GETLINK by name).
    pub(crate) fn get(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.exchange(what, msg, NLM_F_REQUEST)
    }

    fn exchange(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.sock
            .send(&out, 0)
            .map_err(|e| NetError::io(format!("{what}: send"), e))?;

        let multipart = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let n = self
                .sock
                .recv(&mut &mut self.buf[..], 0)
                .map_err(|e| NetError::io(format!("{what}: recv"), e))?;
            let n = n.min(self.buf.len());
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| NetError::Decode {
                    what: what.to_string(),
                    detail: e.to_string(),
                })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(NetError::Decode {
                        what: what.to_string(),
                        detail: "zero-length message".into(),
                    });
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(NetError::Kernel {
                                what: what.to_string(),
                                source: io::Error::from_raw_os_error(-code.get()),
                            }),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if !multipart && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    NetlinkPayload::Noop | NetlinkPayload::Overrun(_) => {}
                    _ => {}
                }
            }
        }
    }
}
