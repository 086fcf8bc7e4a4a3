//! The kernel's IPVS table over generic netlink: socket IO around [`codec`].
//!
//! One synchronous `NETLINK_GENERIC` socket (netlink-sys); the family id of
//! "IPVS" is resolved once through nlctrl. Every change is one request with
//! `NLM_F_ACK`, answered by the kernel's ACK or errno; reads are dumps ended by
//! `NLMSG_DONE`. Replies are matched by sequence number.
//!
//! [`codec`]: super::codec

use netlink_packet_core::{Emitable, NetlinkMessage, NetlinkPayload, ParseableParametrized};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};
use std::fmt::Debug;

use super::backend::IpvsBackend;
use super::codec::{self, IpvsReply, IpvsRequest};
use super::error::IpvsError;
use super::model::{Info, ServiceKey};
use super::table::{Entry, Op, Table};

const RECV_BUF: usize = 256 * 1024;

/// A connection to the kernel's IPVS (see the module documentation).
pub struct KernelIpvs {
    sock: Socket,
    family: u16,
    seq: u32,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
}

impl std::fmt::Debug for KernelIpvs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelIpvs")
            .field("family", &self.family)
            .finish()
    }
}

/// Why an exchange failed: the kernel's errno, or something else.
enum Failure {
    Errno(i32),
    Other(IpvsError),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(IpvsError::Io(e))
    }
}

impl KernelIpvs {
    /// Opens the socket and resolves the IPVS family.
    /// [`IpvsError::NotAvailable`] if the kernel has no IPVS.
    pub fn open() -> Result<Self, IpvsError> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let mut k = KernelIpvs {
            sock,
            family: 0,
            seq: 0,
            send_buf: Vec::with_capacity(512),
            recv_buf: Vec::with_capacity(RECV_BUF),
        };
        let ctrl = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(codec::IPVS_GENL_NAME.to_string())],
        };
        let replies = match k.exchange::<GenlCtrl, GenlCtrl>(ctrl, 0, false) {
            Ok(r) => r,
            Err(Failure::Errno(libc::ENOENT)) => return Err(IpvsError::NotAvailable),
            Err(Failure::Errno(e)) => {
                return Err(IpvsError::Errno {
                    what: "resolve generic netlink family IPVS".into(),
                    errno: e,
                })
            }
            Err(Failure::Other(e)) => return Err(e),
        };
        k.family = replies
            .iter()
            .flat_map(|m| m.payload.nlas.iter())
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| IpvsError::Decode("nlctrl reply without a family id".into()))?;
        Ok(k)
    }

    /// The resolved generic netlink family id of IPVS.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    /// Sends `payload` to generic netlink family `family` (0: the payload's
    /// own static id) and collects the replies up to the ACK or `NLMSG_DONE`.
    fn exchange<Req, Rep>(
        &mut self,
        payload: Req,
        family: u16,
        dump: bool,
    ) -> Result<Vec<GenlMessage<Rep>>, Failure>
    where
        Req: GenlFamily + Emitable + Debug,
        Rep: ParseableParametrized<[u8], GenlHeader> + Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        codec::genl_bytes(payload, family, seq, dump, &mut self.send_buf);
        self.sock.send(&self.send_buf, 0)?;

        let mut out = Vec::new();
        loop {
            self.recv_buf.clear();
            let n = loop {
                match self.sock.recv(&mut self.recv_buf, 0) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            if n > self.recv_buf.len() {
                return Err(Failure::Other(IpvsError::Decode(format!(
                    "netlink datagram of {n} bytes truncated"
                ))));
            }
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<GenlMessage<Rep>>::deserialize(&self.recv_buf[off..n])
                    .map_err(|e| Failure::Other(IpvsError::Decode(e.to_string())))?;
                let len = m.header.length as usize;
                if len == 0 {
                    return Err(Failure::Other(IpvsError::Decode(
                        "zero-length netlink message".into(),
                    )));
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(g) => out.push(g),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) => Err(Failure::Errno(-c.get())),
                        }
                    }
                    NetlinkPayload::Done(d) => {
                        return if d.code < 0 {
                            Err(Failure::Errno(-d.code))
                        } else {
                            Ok(out)
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    fn ipvs(&mut self, req: IpvsRequest) -> Result<Vec<IpvsReply>, Failure> {
        let dump = req.dump;
        let family = self.family;
        Ok(self
            .exchange::<IpvsRequest, IpvsReply>(req, family, dump)?
            .into_iter()
            .map(|g| g.payload)
            .collect())
    }

    fn ipvs_what(&mut self, req: IpvsRequest, what: &str) -> Result<Vec<IpvsReply>, IpvsError> {
        self.ipvs(req).map_err(|f| match f {
            Failure::Errno(errno) => IpvsError::Errno {
                what: what.to_string(),
                errno,
            },
            Failure::Other(e) => e,
        })
    }

    fn dests(&mut self, key: &ServiceKey) -> Result<Vec<super::model::Dest>, IpvsError> {
        let replies = self.ipvs_what(
            codec::get_dests_request(key),
            &format!("list destinations of {key}"),
        )?;
        replies
            .iter()
            .map(|r| codec::decode_dest(r, key.family()))
            .collect()
    }

    fn entry(&mut self, service: super::model::Service) -> Result<Entry, IpvsError> {
        let dests = self.dests(&service.key)?;
        Ok(Entry {
            service,
            dests: dests.into_iter().map(|d| (d.key(), d)).collect(),
        })
    }
}

impl IpvsBackend for KernelIpvs {
    fn info(&mut self) -> Result<Info, IpvsError> {
        let r = self.ipvs_what(codec::get_info_request(), "get IPVS info")?;
        codec::decode_info(
            r.first()
                .ok_or_else(|| IpvsError::Decode("no GET_INFO reply".into()))?,
        )
    }

    fn table(&mut self) -> Result<Table, IpvsError> {
        let replies = self.ipvs_what(codec::get_services_request(), "list services")?;
        let mut t = Table::new();
        for r in &replies {
            let e = self.entry(codec::decode_service(r)?)?;
            let key = e.service.key;
            t.insert_service(e.service);
            for d in e.dests.into_values() {
                t.insert_dest(&key, d)?;
            }
        }
        Ok(t)
    }

    fn service(&mut self, key: &ServiceKey) -> Result<Option<Entry>, IpvsError> {
        match self.ipvs(codec::get_service_request(key)) {
            Ok(r) => match r.first() {
                Some(r) => Ok(Some(self.entry(codec::decode_service(r)?)?)),
                None => Ok(None),
            },
            Err(Failure::Errno(libc::ESRCH)) => Ok(None),
            Err(Failure::Errno(errno)) => Err(IpvsError::Errno {
                what: format!("get {key}"),
                errno,
            }),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), IpvsError> {
        for (i, op) in ops.iter().enumerate() {
            match self.ipvs(codec::op_request(op)) {
                Ok(_) => {}
                Err(Failure::Errno(errno)) => return Err(IpvsError::refused(i, op, errno)),
                Err(Failure::Other(e)) => return Err(e),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IpvsError> {
        self.ipvs_what(codec::flush_request(), "flush").map(|_| ())
    }

    fn zero(&mut self, service: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let what = match service {
            Some(k) => format!("zero {k}"),
            None => "zero counters".to_string(),
        };
        self.ipvs_what(codec::zero_request(service), &what)
            .map(|_| ())
    }

    fn describe(&self) -> String {
        "kernel".into()
    }
}
