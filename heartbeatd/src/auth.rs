//! Message authentication: the three heartbeat 3.0.6 methods and the keyring
//! read from `authkeys`.
//!
//! * `sha1` — HMAC-SHA1 (RFC 2104), 40 lower-case hex digits;
//! * `md5`  — HMAC-MD5, 32 lower-case hex digits;
//! * `crc`  — CRC-32 with polynomial 0x04C11DB7, MSB first, init 0, final
//!   complement and no length suffix (POSIX `cksum` without the length),
//!   printed like C's `%lx`: lower-case hex **without leading zeros**. It has
//!   no key and protects against corruption only, not forgery.
//!
//! A receiver verifies a packet with the key index the packet names. Real
//! 3.0.6 nodes in practice only accept each other across *different* indexes
//! when those indexes share one secret (observed: different secrets per index
//! make two 3.0.6 nodes reject each other); heartbeatd verifies strictly by
//! the named index, which is the documented intent.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};

/// Highest key index `authkeys` may use (3.0.6 accepts 0..=15).
pub const MAX_KEY_INDEX: u8 = 15;

const CKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_CKSUM);

/// One authentication method with its secret.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMethod {
    Crc,
    Md5(Vec<u8>),
    Sha1(Vec<u8>),
}

impl fmt::Debug for AuthMethod {
    // Never print secrets (logs, --check output).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AuthMethod {
    /// The method's name as written in `authkeys`.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Crc => "crc",
            AuthMethod::Md5(_) => "md5",
            AuthMethod::Sha1(_) => "sha1",
        }
    }

    /// The digest of `data`, as the lower-case hex text heartbeat puts on
    /// the wire.
    pub fn digest_hex(&self, data: &[u8]) -> String {
        match self {
            AuthMethod::Crc => format!("{:x}", CKSUM.checksum(data)),
            AuthMethod::Md5(key) => {
                let mut m = <Hmac<md5::Md5> as KeyInit>::new_from_slice(key)
                    .expect("HMAC accepts any key length");
                m.update(data);
                hex(&m.finalize().into_bytes())
            }
            AuthMethod::Sha1(key) => {
                let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key)
                    .expect("HMAC accepts any key length");
                m.update(data);
                hex(&m.finalize().into_bytes())
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// Constant-time comparison of two digests (hex text).
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The keys of `authkeys`: every index with its method, and the index used
/// for sending (`auth N`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyring {
    send: u8,
    keys: BTreeMap<u8, AuthMethod>,
}

/// Why a packet's authentication was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no authentication")]
    Missing,
    #[error("malformed authentication {0:?}")]
    Malformed(String),
    #[error("unknown key index {0}")]
    UnknownIndex(u8),
    #[error("authtoken does not match (index {index}, {method})")]
    Mismatch { index: u8, method: &'static str },
}

impl Keyring {
    /// A keyring; `send` must be one of the indexes in `keys`.
    pub fn new(send: u8, keys: BTreeMap<u8, AuthMethod>) -> Result<Keyring, String> {
        if !keys.contains_key(&send) {
            return Err(format!("auth {send}: no key with index {send}"));
        }
        Ok(Keyring { send, keys })
    }

    /// A keyring with one key, used for sending.
    pub fn single(index: u8, method: AuthMethod) -> Keyring {
        Keyring {
            send: index,
            keys: BTreeMap::from([(index, method)]),
        }
    }

    pub fn send_index(&self) -> u8 {
        self.send
    }

    pub fn keys(&self) -> &BTreeMap<u8, AuthMethod> {
        &self.keys
    }

    pub fn send_method(&self) -> &AuthMethod {
        &self.keys[&self.send]
    }

    /// The authentication text for `data` with the sending key: `"N HEX"`.
    pub fn sign(&self, data: &[u8]) -> String {
        format!("{} {}", self.send, self.send_method().digest_hex(data))
    }

    /// Checks an authentication text `"N HEX"` over `data`, using the key
    /// with the index the text names.
    pub fn verify(&self, auth: &[u8], data: &[u8]) -> Result<u8, AuthError> {
        let text = std::str::from_utf8(auth)
            .map_err(|_| AuthError::Malformed(String::from_utf8_lossy(auth).into_owned()))?;
        let (idx, digest) = text
            .split_once(' ')
            .ok_or_else(|| AuthError::Malformed(text.to_owned()))?;
        let index: u8 = idx
            .parse()
            .ok()
            .filter(|i| *i <= MAX_KEY_INDEX)
            .ok_or_else(|| AuthError::Malformed(text.to_owned()))?;
        let method = self
            .keys
            .get(&index)
            .ok_or(AuthError::UnknownIndex(index))?;
        if same_digest(&method.digest_hex(data), digest) {
            Ok(index)
        } else {
            Err(AuthError::Mismatch {
                index,
                method: method.name(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2202_hmac_sha1_and_md5() {
        // RFC 2202 test case 2.
        let key = b"Jefe".to_vec();
        let data = b"what do ya want for nothing?";
        assert_eq!(
            AuthMethod::Sha1(key.clone()).digest_hex(data),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            AuthMethod::Md5(key).digest_hex(data),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    #[test]
    fn crc_is_cksum_without_length_and_without_leading_zeros() {
        // CRC-32/CKSUM check value over "123456789".
        assert_eq!(AuthMethod::Crc.digest_hex(b"123456789"), "765e7680");
        // A value below 0x10000000 prints fewer than 8 digits: scan for one.
        let short = (0u32..)
            .map(|i| i.to_string())
            .find(|s| CKSUM.checksum(s.as_bytes()) < 0x1000_0000)
            .unwrap();
        let h = AuthMethod::Crc.digest_hex(short.as_bytes());
        assert!(h.len() < 8 && !h.starts_with('0'), "{h}");
    }

    #[test]
    fn verify_uses_the_index_named_in_the_packet() {
        let ring = Keyring::new(
            2,
            BTreeMap::from([
                (1, AuthMethod::Crc),
                (2, AuthMethod::Sha1(b"k2".to_vec())),
                (3, AuthMethod::Md5(b"k3".to_vec())),
            ]),
        )
        .unwrap();
        let data = b"payload";
        let by3 = format!("3 {}", AuthMethod::Md5(b"k3".to_vec()).digest_hex(data));
        assert_eq!(ring.verify(by3.as_bytes(), data), Ok(3));
        assert_eq!(ring.verify(ring.sign(data).as_bytes(), data), Ok(2));
        let wrong = format!("2 {}", AuthMethod::Sha1(b"k3".to_vec()).digest_hex(data));
        assert_eq!(
            ring.verify(wrong.as_bytes(), data),
            Err(AuthError::Mismatch {
                index: 2,
                method: "sha1"
            })
        );
        assert_eq!(ring.verify(b"7 abc", data), Err(AuthError::UnknownIndex(7)));
        assert!(matches!(
            ring.verify(b"16 abc", data),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            ring.verify(b"2abc", data),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let s = format!("{:?}", AuthMethod::Sha1(b"topsecret".to_vec()));
        assert!(!s.contains("topsecret"));
    }
}
