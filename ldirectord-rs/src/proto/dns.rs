//! The dns negotiate check: one query for the `request` name (type A, or
//! PTR when the request is an IP address, as Net::DNS does), sent to the
//! real server over UDP (TCP with `protocol=tcp`); up if an A address or a
//! PTR name of the answer matches the receive pattern.

use std::net::IpAddr;
use std::sync::Arc;

use regex::bytes::Regex;

use super::{Outcome, Step};

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;

/// One dns check.
#[derive(Debug)]
pub struct Dns {
    pub udp: bool,
    id: u16,
    query: Vec<u8>,
    receive: Option<Arc<Regex>>,
    buf: Vec<u8>,
}

/// The name and type queried for a request (`/www.x.y` → `www.x.y` A,
/// `/10.0.0.1` → `1.0.0.10.in-addr.arpa` PTR).
pub fn question(request: &str) -> (String, u16) {
    let name = request.strip_prefix('/').unwrap_or(request);
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let o = a.octets();
            (
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]),
                TYPE_PTR,
            )
        }
        Ok(IpAddr::V6(a)) => {
            let mut s = String::new();
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            (s, TYPE_PTR)
        }
        Err(_) => (name.trim_end_matches('.').to_string(), TYPE_A),
    }
}

/// Encodes a standard recursive query.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
    }
    q.push(0);
    if q.len() > 12 + 255 {
        return None;
    }
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Some(q)
}

/// Reads a (possibly compressed) name at `pos`; returns it and the offset
/// just past it in the original record.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            return Some((out, end.unwrap_or(pos + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let ptr = ((len & 0x3f) << 8) | *msg.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            pos = ptr;
            continue;
        }
        let label = msg.get(pos + 1..pos + 1 + len)?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&String::from_utf8_lossy(label));
        pos += 1 + len;
    }
    None
}

/// The A addresses and PTR names of an answer, or an error message.
pub fn answers(msg: &[u8], id: u16) -> Result<Vec<String>, String> {
    if msg.len() < 12 {
        return Err("short DNS message".into());
    }
    if u16::from_be_bytes([msg[0], msg[1]]) != id || msg[2] & 0x80 == 0 {
        return Err("not an answer to our query".into());
    }
    let rcode = msg[3] & 0x0f;
    if rcode != 0 {
        let name = match rcode {
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            _ => "error",
        };
        return Err(format!("query failed: {name}"));
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut pos = 12;
    for _ in 0..qd {
        let (_, p) = read_name(msg, pos).ok_or("bad question")?;
        pos = p + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, p) = read_name(msg, pos).ok_or("bad answer")?;
        let hdr = msg.get(p..p + 10).ok_or("bad answer")?;
        let ty = u16::from_be_bytes([hdr[0], hdr[1]]);
        let rdlen = u16::from_be_bytes([hdr[8], hdr[9]]) as usize;
        let rd = p + 10;
        let rdata = msg.get(rd..rd + rdlen).ok_or("bad answer")?;
        match ty {
            TYPE_A if rdlen == 4 => out.push(format!(
                "{}.{}.{}.{}",
                rdata[0], rdata[1], rdata[2], rdata[3]
            )),
            TYPE_PTR => {
                let (n, _) = read_name(msg, rd).ok_or("bad PTR answer")?;
                out.push(n);
            }
            _ => {}
        }
        pos = rd + rdlen;
    }
    Ok(out)
}

impl Dns {
    /// `None` if the request is not a valid DNS name.
    pub fn new(request: &str, udp: bool, receive: Option<Arc<Regex>>, id: u16) -> Option<Dns> {
        let (name, qtype) = question(request);
        let query = encode_query(id, &name, qtype)?;
        Some(Dns {
            udp,
            id,
            query,
            receive,
            buf: Vec::new(),
        })
    }

    pub fn start(&mut self) -> Step {
        if self.udp {
            Step::Send(self.query.clone())
        } else {
            let mut m = (self.query.len() as u16).to_be_bytes().to_vec();
            m.extend_from_slice(&self.query);
            Step::Send(m)
        }
    }

    pub fn data(&mut self, data: &[u8]) -> Step {
        let msg: &[u8] = if self.udp {
            data
        } else {
            self.buf.extend_from_slice(data);
            if self.buf.len() < 2 {
                return Step::Wait;
            }
            let n = u16::from_be_bytes([self.buf[0], self.buf[1]]) as usize;
            if self.buf.len() < 2 + n {
                return Step::Wait;
            }
            &self.buf[2..2 + n]
        };
        match answers(msg, self.id) {
            // a stray datagram: keep waiting for ours
            Err(e) if self.udp && e == "not an answer to our query" => Step::Wait,
            Err(e) => Step::Done(Outcome::down(e)),
            Ok(list) => {
                let hit = self
                    .receive
                    .as_ref()
                    .and_then(|re| list.iter().find(|a| re.is_match(a.as_bytes())));
                match hit {
                    Some(_) => Step::Done(Outcome::up("Success")),
                    None => Step::Done(Outcome::down(format!(
                        "Response mismatch ({})",
                        if list.is_empty() {
                            "no A or PTR answer".to_string()
                        } else {
                            list.join(" ")
                        }
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `q` with the given answer records (name compressed as
    /// a pointer to the question).
    fn respond(q: &[u8], rcode: u8, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for (ty, rdata) in answers {
            r.extend_from_slice(&[0xc0, 12]);
            r.extend_from_slice(&ty.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(rdata);
        }
        r
    }

    #[test]
    fn question_forms() {
        assert_eq!(question("/www.x.y"), ("www.x.y".into(), TYPE_A));
        assert_eq!(
            question("10.0.0.1"),
            ("1.0.0.10.in-addr.arpa".into(), TYPE_PTR)
        );
        let (n, t) = question("/2001:db8::1");
        assert_eq!(t, TYPE_PTR);
        assert!(
            n.starts_with("1.0.0.0.") && n.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"),
            "{n}"
        );
    }

    #[test]
    fn query_bytes() {
        let q = encode_query(0x1234, "x.y", TYPE_A).unwrap();
        assert_eq!(
            q,
            [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'x', 1, b'y', 0, 0, 1, 0, 1]
        );
        assert!(encode_query(1, "a..b", TYPE_A).is_none());
    }

    #[test]
    fn a_answer_matches_receive() {
        let re = Arc::new(Regex::new("^192\\.168\\.6\\.2$").unwrap());
        let mut d = Dns::new("/www.x.y", true, Some(re), 7).unwrap();
        let Step::Send(q) = d.start() else { panic!() };
        let r = respond(&q, 0, &[(TYPE_A, vec![192, 168, 6, 2])]);
        assert_eq!(d.data(&r), Step::Done(Outcome::up("Success")));
        let r = respond(&q, 0, &[(TYPE_A, vec![192, 168, 6, 3])]);
        assert_eq!(
            d.data(&r),
            Step::Done(Outcome::down("Response mismatch (192.168.6.3)"))
        );
        let r = respond(&q, 3, &[]);
        assert_eq!(
            d.data(&r),
            Step::Done(Outcome::down("query failed: NXDOMAIN"))
        );
    }

    #[test]
    fn ptr_answer_over_tcp() {
        let re = Arc::new(Regex::new("^host\\.example$").unwrap());
        let mut d = Dns::new("/10.0.0.1", false, Some(re), 9).unwrap();
        let Step::Send(framed) = d.start() else {
            panic!()
        };
        let q = &framed[2..];
        let mut rdata = vec![4];
        rdata.extend_from_slice(b"host");
        rdata.push(7);
        rdata.extend_from_slice(b"example");
        rdata.push(0);
        let r = respond(q, 0, &[(TYPE_PTR, rdata)]);
        let mut framed = (r.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&r);
        assert_eq!(d.data(&framed[..5]), Step::Wait);
        assert_eq!(d.data(&framed[5..]), Step::Done(Outcome::up("Success")));
    }

    #[test]
    fn stray_datagrams_are_ignored() {
        let mut d = Dns::new("/x", true, None, 1).unwrap();
        let Step::Send(q) = d.start() else { panic!() };
        let mut other = respond(&q, 0, &[]);
        other[1] = 2;
        assert_eq!(d.data(&other), Step::Wait);
    }
}
