//! The netstring encoding of a message (what 3.0.6 puts in every UDP packet).
//!
//! ```text
//! "###\n" { LEN ":" "(" T ")" NAME "=" VALUE "," } "%%%\n" LEN ":" N " " HEX ","
//! ```
//! `LEN` is the decimal byte length of what follows the colon up to the comma
//! (type prefix included). Values are raw bytes and may contain any byte.

use super::{Field, Message, WireError};
use crate::auth::Keyring;

pub const START: &[u8] = b"###\n";
pub const END: &[u8] = b"%%%\n";

/// A decoded netstring packet.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub msg: Message,
    /// The bytes the outer auth covers (`###\n` through `%%%\n`).
    pub signed: &'a [u8],
    /// The outer auth text (`N HEX`), if the packet has one.
    pub outer_auth: Option<&'a [u8]>,
}

fn push_netstring(out: &mut Vec<u8>, body_len: usize) {
    out.extend_from_slice(body_len.to_string().as_bytes());
    out.push(b':');
}

/// Renders `msg` (which should already carry its inner `auth` field) and
/// appends the outer auth computed with `keys`' sending key.
pub fn encode(msg: &Message, keys: &Keyring) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        START.len()
            + END.len()
            + 64
            + msg
                .fields
                .iter()
                .map(|f| f.name.len() + f.value.len() + 12)
                .sum::<usize>(),
    );
    out.extend_from_slice(START);
    for f in &msg.fields {
        let body = 3 + f.name.len() + 1 + f.value.len();
        push_netstring(&mut out, body);
        out.push(b'(');
        out.push(b'0' + f.ty);
        out.push(b')');
        out.extend_from_slice(f.name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(&f.value);
        out.push(b',');
    }
    out.extend_from_slice(END);
    let auth = keys.sign(&out);
    push_netstring(&mut out, auth.len());
    out.extend_from_slice(auth.as_bytes());
    out.push(b',');
    out
}

fn malformed(at: usize, what: &str) -> WireError {
    WireError::Malformed(format!("{what} at byte {at}"))
}

/// Reads one netstring at `buf[pos..]`; returns (body, position after ',').
fn read_netstring(buf: &[u8], pos: usize) -> Result<(&[u8], usize), WireError> {
    let digits = buf[pos..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 7 {
        return Err(malformed(pos, "bad netstring length"));
    }
    let len: usize = std::str::from_utf8(&buf[pos..pos + digits])
        .expect("ascii digits")
        .parse()
        .map_err(|_| malformed(pos, "bad netstring length"))?;
    let colon = pos + digits;
    if buf.get(colon) != Some(&b':') {
        return Err(malformed(colon, "missing ':'"));
    }
    let start = colon + 1;
    let end = start
        .checked_add(len)
        .filter(|e| *e < buf.len())
        .ok_or_else(|| malformed(start, "netstring runs past the end"))?;
    if buf[end] != b',' {
        return Err(malformed(end, "missing ','"));
    }
    Ok((&buf[start..end], end + 1))
}

/// Parses a netstring packet. The outer auth is returned, not verified.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, WireError> {
    if !buf.starts_with(START) {
        return Err(WireError::NotHeartbeat);
    }
    let mut pos = START.len();
    let mut msg = Message::default();
    loop {
        if buf[pos..].starts_with(END) {
            pos += END.len();
            break;
        }
        if pos >= buf.len() {
            return Err(malformed(pos, "no %%% end marker"));
        }
        let (body, next) = read_netstring(buf, pos)?;
        msg.fields
            .push(parse_field(body).map_err(|w| malformed(pos, w))?);
        pos = next;
    }
    let signed = &buf[..pos];
    let outer_auth = if pos == buf.len() {
        None
    } else {
        let (auth, next) = read_netstring(buf, pos)?;
        if next != buf.len() {
            return Err(malformed(next, "trailing bytes after the auth"));
        }
        Some(auth)
    };
    Ok(Decoded {
        msg,
        signed,
        outer_auth,
    })
}

fn parse_field(body: &[u8]) -> Result<Field, &'static str> {
    if body.len() < 3 || body[0] != b'(' || body[2] != b')' || !(b'0'..=b'5').contains(&body[1]) {
        return Err("bad field type prefix");
    }
    let rest = &body[3..];
    let eq = rest
        .iter()
        .position(|b| *b == b'=')
        .ok_or("field without '='")?;
    let name = std::str::from_utf8(&rest[..eq]).map_err(|_| "field name is not text")?;
    if name.is_empty() {
        return Err("empty field name");
    }
    Ok(Field {
        ty: body[1] - b'0',
        name: name.to_owned(),
        value: rest[eq + 1..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    #[test]
    fn round_trip_with_binary_bytes() {
        let keys = Keyring::single(1, AuthMethod::Crc);
        let mut m = Message::new("x");
        m.add_binary("u", b"a,b=c\n%%%\n###\n").add("v", "");
        let bytes = encode(&m, &keys);
        let d = decode(&bytes).unwrap();
        assert_eq!(d.msg, m);
        assert!(keys.verify(d.outer_auth.unwrap(), d.signed).is_ok());
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        for bad in [
            &b"###\n"[..],
            b"###\n5:(0)a=b,",
            b"###\n4:(0)a=b,%%%\n",
            b"###\n5:(9)a=b,%%%\n",
            b"###\n5:(0)ab.,%%%\n",
            b"###\n5:(0)=ab,%%%\n",
            b"###\n99999999:(0)a=b,%%%\n",
            b"###\n5:(0)a=b,%%%\n3:1 a,x",
            b"###\n5:(0)a=b,%%%\n9:1 a,",
            b"###\n:(0)a=b,%%%\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
