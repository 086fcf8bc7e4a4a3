//! The heartbeat 3.0.6 wire format: messages as ordered name/value fields,
//! their two encodings and their authentication.
//!
//! * **netstring** (every UDP packet 3.0.6 sends): `###\n`, one netstring
//!   `LEN:(T)NAME=VALUE,` per field, `%%%\n`, then the *outer* auth netstring
//!   `LEN:N HEX,` computed over everything before it.
//! * **classic** (serial lines, the FIFO, and accepted on UDP too): `>>>\n`,
//!   one `[(T)]NAME=VALUE\n` line per field (binary values base64), `<<<\n`;
//!   its only authentication is the `auth` field.
//!
//! Both carry the *inner* `auth` field `N HEX`, computed over the classic
//! rendering of every other field (see [`classic::signing_text`]). A receiver
//! verifies the outer auth of a netstring packet and the `auth` field of a
//! classic one, each with the key index it names.
//!
//! This module is pure: bytes in, [`Message`]s out and back.

pub mod classic;
pub mod netstring;

use crate::auth::{AuthError, Keyring};

/// Largest message heartbeat accepts (MAXMSG, 256 KiB).
pub const MAX_MSG: usize = 256 * 1024;

/// Field type codes (the `(T)` prefix).
pub mod ty {
    pub const STRING: u8 = 0;
    pub const BINARY: u8 = 1;
    pub const STRUCT: u8 = 2;
    pub const LIST: u8 = 3;
    pub const COMPRESS: u8 = 4;
    pub const UNCOMPRESS: u8 = 5;
}

/// One field: type code, name, raw value bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub ty: u8,
    pub name: String,
    pub value: Vec<u8>,
}

/// A heartbeat message: fields in wire order (order matters for the auth).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub fields: Vec<Field>,
}

/// Well-known field names.
pub mod f {
    pub const TYPE: &str = "t";
    pub const SRC: &str = "src";
    pub const SRCUUID: &str = "srcuuid";
    pub const DEST: &str = "dest";
    pub const DESTUUID: &str = "destuuid";
    pub const SEQ: &str = "seq";
    pub const GEN: &str = "hg";
    pub const TIME: &str = "ts";
    pub const LOAD: &str = "ld";
    pub const TTL: &str = "ttl";
    pub const AUTH: &str = "auth";
    pub const STATUS: &str = "st";
    pub const DEADTIME: &str = "dt";
    pub const PROTOCOL: &str = "protocol";
}

impl Message {
    pub fn new(t: &str) -> Message {
        let mut m = Message::default();
        m.add(f::TYPE, t);
        m
    }

    /// Appends a string field.
    pub fn add(&mut self, name: &str, value: &str) -> &mut Self {
        self.fields.push(Field {
            ty: ty::STRING,
            name: name.to_owned(),
            value: value.as_bytes().to_vec(),
        });
        self
    }

    /// Appends a binary field.
    pub fn add_binary(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.fields.push(Field {
            ty: ty::BINARY,
            name: name.to_owned(),
            value: value.to_vec(),
        });
        self
    }

    fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|x| x.name == name)
    }

    /// The value of string field `name` (None if absent, not a string or not
    /// UTF-8).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.field(name)
            .filter(|x| x.ty == ty::STRING)
            .and_then(|x| std::str::from_utf8(&x.value).ok())
    }

    /// The raw bytes of field `name`, whatever its type.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.field(name).map(|x| x.value.as_slice())
    }

    /// The message type (`t`).
    pub fn msg_type(&self) -> Option<&str> {
        self.get(f::TYPE)
    }

    /// A hex number field (`seq`, `hg`, `ts`, `dt`, `ackseq`).
    pub fn get_hex(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(|v| u64::from_str_radix(v, 16).ok())
    }

    /// A decimal number field (`ttl`, and `firstseq`/`lastseq` of NS_rexmit).
    pub fn get_dec(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(|v| v.parse().ok())
    }

    /// Removes every field named `name`; returns the first removed.
    pub fn remove(&mut self, name: &str) -> Option<Field> {
        let pos = self.fields.iter().position(|x| x.name == name)?;
        let first = self.fields.remove(pos);
        self.fields.retain(|x| x.name != name);
        Some(first)
    }

    /// Encodes for UDP: appends the inner `auth` field, renders netstring,
    /// appends the outer auth. `self` must not already carry `auth`.
    pub fn encode_netstring(&self, keys: &Keyring) -> Vec<u8> {
        let mut m = self.clone();
        m.add(f::AUTH, &keys.sign(&classic::signing_text(&m.fields)));
        netstring::encode(&m, keys)
    }

    /// Encodes in the classic text form (serial lines), with the `auth` field.
    pub fn encode_classic(&self, keys: &Keyring) -> Vec<u8> {
        let mut m = self.clone();
        m.add(f::AUTH, &keys.sign(&classic::signing_text(&m.fields)));
        classic::encode(&m)
    }
}

/// Why a packet was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message too large ({0} bytes)")]
    TooLarge(usize),
    #[error("not a heartbeat message")]
    NotHeartbeat,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0}")]
    Auth(#[from] AuthError),
}

/// Decodes one datagram (netstring or classic) and verifies its
/// authentication. The returned message still carries its `auth` field.
pub fn decode_verified(buf: &[u8], keys: &Keyring) -> Result<Message, WireError> {
    if buf.len() > MAX_MSG {
        return Err(WireError::TooLarge(buf.len()));
    }
    if buf.starts_with(netstring::START) {
        let p = netstring::decode(buf)?;
        let auth = p.outer_auth.ok_or(WireError::Auth(AuthError::Missing))?;
        keys.verify(auth, p.signed)?;
        Ok(p.msg)
    } else if buf.starts_with(classic::START) {
        let msg = classic::decode(buf)?;
        let auth = msg
            .get_bytes(f::AUTH)
            .ok_or(WireError::Auth(AuthError::Missing))?;
        let text = classic::signing_text(&msg.fields);
        keys.verify(auth, &text)?;
        Ok(msg)
    } else {
        Err(WireError::NotHeartbeat)
    }
}
