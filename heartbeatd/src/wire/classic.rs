//! The classic text encoding: `>>>\n`, `[(T)]NAME=VALUE\n` lines, `<<<\n`.
//!
//! Binary values are standard base64 with padding; strings have no type
//! prefix. The same rendering, without the frame lines and without the
//! `auth` field, is what the inner `auth` field is computed over
//! ([`signing_text`]).

use base64::Engine as _;

use super::{f, ty, Field, Message, WireError};

pub const START: &[u8] = b">>>\n";
pub const END: &[u8] = b"<<<\n";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn render_field(out: &mut Vec<u8>, fl: &Field) {
    if fl.ty != ty::STRING {
        out.extend_from_slice(&[b'(', b'0' + fl.ty, b')']);
    }
    out.extend_from_slice(fl.name.as_bytes());
    out.push(b'=');
    if fl.ty == ty::BINARY {
        out.extend_from_slice(B64.encode(&fl.value).as_bytes());
    } else {
        out.extend_from_slice(&fl.value);
    }
    out.push(b'\n');
}

/// The bytes the inner `auth` field covers: every field but `auth`, in
/// order, one classic line each.
pub fn signing_text(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for fl in fields.iter().filter(|x| x.name != f::AUTH) {
        render_field(&mut out, fl);
    }
    out
}

/// Renders a whole classic frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = START.to_vec();
    for fl in &msg.fields {
        render_field(&mut out, fl);
    }
    out.extend_from_slice(END);
    out
}

/// Parses one classic frame (`>>>\n` ... `<<<\n`; a trailing NUL is allowed).
pub fn decode(buf: &[u8]) -> Result<Message, WireError> {
    let mut buf = buf;
    while let [rest @ .., 0] = buf {
        buf = rest;
    }
    let body = buf
        .strip_prefix(START)
        .ok_or(WireError::NotHeartbeat)?
        .strip_suffix(END)
        .ok_or_else(|| WireError::Malformed("no <<< end line".into()))?;
    let mut msg = Message::default();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        msg.fields.push(
            parse_line(line).map_err(|w| WireError::Malformed(format!("line {}: {w}", i + 2)))?,
        );
    }
    Ok(msg)
}

/// Parses one `[(T)]NAME=VALUE` line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Field, &'static str> {
    let (t, rest) = match line {
        [b'(', d @ b'0'..=b'5', b')', rest @ ..] => (d - b'0', rest),
        [b'(', ..] => return Err("bad field type prefix"),
        _ => (ty::STRING, line),
    };
    let eq = rest
        .iter()
        .position(|b| *b == b'=')
        .ok_or("line without '='")?;
    let name = std::str::from_utf8(&rest[..eq]).map_err(|_| "field name is not text")?;
    if name.is_empty() {
        return Err("empty field name");
    }
    let raw = &rest[eq + 1..];
    let value = match t {
        ty::STRING => raw.to_vec(),
        ty::BINARY => B64
            .decode(raw)
            .map_err(|_| "bad base64 in a binary field")?,
        _ => return Err("nested field types are not supported in classic frames"),
    };
    Ok(Field {
        ty: t,
        name: name.to_owned(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut m = Message::new("status");
        m.add_binary("srcuuid", &[0xc3, 0xcd, 0, 0xff])
            .add("ld", "1 2 3");
        let e = encode(&m);
        assert_eq!(
            e,
            b">>>\nt=status\n(1)srcuuid=w80A/w==\nld=1 2 3\n<<<\n".to_vec()
        );
        assert_eq!(decode(&e).unwrap(), m);
    }

    #[test]
    fn malformed() {
        for bad in [
            &b">>>\nt=x\n"[..],
            b">>>\nnoequals\n<<<\n",
            b">>>\n(1)u=***\n<<<\n",
            b">>>\n(2)u=x\n<<<\n",
            b">>>\n(x)u=x\n<<<\n",
            b">>>\n=x\n<<<\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
