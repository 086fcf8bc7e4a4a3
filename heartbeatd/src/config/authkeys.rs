//! `authkeys`: the keys that sign and verify every packet.
//!
//! ```text
//! auth N              # the index used for sending
//! N method [key]      # one line per index 0..=15; method sha1, md5 or crc
//! ```
//!
//! The grammar follows 3.0.6's `parse_authfile` (a `sscanf` loop):
//!
//! * a line whose first non-blank character is `#` is a comment; there are
//!   **no end-of-line comments** — `1 crc # old` gives crc the "key" `#`,
//!   which is an error, and words after a key are ignored;
//! * a line starting with `a` must be `auth N` (`auth1` works too);
//! * any other line is `N method [key]`: `sha1` and `md5` need the key (the
//!   single blank-free word after the method, used as raw bytes), `crc`
//!   must have none; method names are lower case;
//! * `auth N` selects the sending key only for key lines that come *after*
//!   it (3.0.6 compares the index while reading each key line), so
//!   `1 crc` followed by `auth 1` is refused, as in 3.0.6.
//!
//! Deliberately stricter than 3.0.6: the same index given twice is an
//! error (3.0.6 silently keeps the last line).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::auth::{AuthMethod, Keyring, MAX_KEY_INDEX};

use super::ConfigError;

/// Parses `authkeys` text; `path` is used in error messages.
pub fn parse_authkeys(path: &Path, text: &str) -> Result<Keyring, Vec<ConfigError>> {
    let err = |line: Option<usize>, msg: String| ConfigError {
        file: path.to_path_buf(),
        line,
        msg,
    };
    let mut errors = Vec::new();
    let mut keys: BTreeMap<u8, (usize, AuthMethod)> = BTreeMap::new();
    // The latest `auth` line (index, line) and the sending index as 3.0.6
    // determines it.
    let mut auth: Option<(i64, usize)> = None;
    let mut send: Option<u8> = None;

    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let line = raw.trim_start_matches(is_c_space);
        if line.is_empty() || line.starts_with('#') || line.chars().all(is_c_space) {
            continue;
        }
        if line.starts_with('a') {
            match line
                .strip_prefix("auth")
                .and_then(|rest| scan_int(rest).map(|(n, _)| n))
            {
                Some(n) => auth = Some((n, lineno)),
                None => errors.push(err(
                    Some(lineno),
                    format!(
                        "invalid auth line {:?}: expected \"auth N\" with N the index \
                         of the key to send with",
                        line.trim_end()
                    ),
                )),
            }
            continue;
        }
        let Some((index, rest)) = scan_int(line) else {
            errors.push(err(
                Some(lineno),
                format!(
                    "invalid line {:?}: expected \"auth N\" or \"N METHOD [KEY]\" \
                     (comments must start the line with #)",
                    line.trim_end()
                ),
            ));
            continue;
        };
        let (method, rest) = scan_word(rest);
        let Some(method) = method else {
            errors.push(err(
                Some(lineno),
                format!(
                    "invalid line {:?}: index {index} without a method (sha1, md5 or crc)",
                    line.trim_end()
                ),
            ));
            continue;
        };
        let (key, _ignored) = scan_word(rest);
        let index = match u8::try_from(index).ok().filter(|i| *i <= MAX_KEY_INDEX) {
            Some(i) => i,
            None => {
                errors.push(err(
                    Some(lineno),
                    format!("key index {index} out of range: indexes are 0 to {MAX_KEY_INDEX}"),
                ));
                continue;
            }
        };
        let method = match (method, key) {
            ("sha1", Some(k)) => AuthMethod::Sha1(k.as_bytes().to_vec()),
            ("md5", Some(k)) => AuthMethod::Md5(k.as_bytes().to_vec()),
            ("crc", None) => AuthMethod::Crc,
            ("sha1" | "md5", None) => {
                errors.push(err(
                    Some(lineno),
                    format!("method {method} requires a key: \"{index} {method} SECRET\""),
                ));
                continue;
            }
            ("crc", Some(k)) => {
                errors.push(err(
                    Some(lineno),
                    format!(
                        "method crc takes no key, but {k:?} follows it \
                         (authkeys has no end-of-line comments)"
                    ),
                ));
                continue;
            }
            (m, _) => {
                let hint = if ["sha1", "md5", "crc"].contains(&m.to_ascii_lowercase().as_str()) {
                    " (method names are lower case)"
                } else {
                    ""
                };
                errors.push(err(
                    Some(lineno),
                    format!("unknown method {m:?}: use sha1, md5 or crc{hint}"),
                ));
                continue;
            }
        };
        if let Some((first, _)) = keys.get(&index) {
            errors.push(err(
                Some(lineno),
                format!("key index {index} is already defined on line {first}"),
            ));
            continue;
        }
        if auth.is_some_and(|(n, _)| n == i64::from(index)) {
            send = Some(index);
        }
        keys.insert(index, (lineno, method));
    }

    match (auth, send) {
        (_, Some(_)) => {}
        (None, None) => errors.push(err(
            None,
            "no \"auth N\" line: name the key index to send with (e.g. \"auth 1\")".into(),
        )),
        (Some((n, line)), None) => {
            let msg = if keys.contains_key(&u8::try_from(n).unwrap_or(u8::MAX)) {
                format!(
                    "auth {n}: the key line for index {n} comes before this line; \
                     heartbeat only takes key lines that follow \"auth {n}\" (move it to the top)"
                )
            } else {
                format!("auth {n}: there is no key with index {n}")
            };
            errors.push(err(Some(line), msg));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let send = send.expect("checked above");
    let keys = keys.into_iter().map(|(i, (_, m))| (i, m)).collect();
    Keyring::new(send, keys).map_err(|msg| vec![err(None, msg)])
}

/// Refuses an `authkeys` file that group or others may read, like 3.0.6
/// (which checks the read bits only).
pub fn check_permissions(path: &Path) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        msg: format!("cannot read: {e}"),
    })?;
    if meta.mode() & 0o044 != 0 {
        return Err(ConfigError {
            file: path.to_path_buf(),
            line: None,
            msg: format!(
                "Bad permissions on keyfile [{}], 600 recommended. (mode is {:03o}; \
                 run: chmod 600 {})",
                path.display(),
                meta.mode() & 0o777,
                path.display()
            ),
        });
    }
    Ok(())
}

/// C's `isspace` in the "C" locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `sscanf("%d")`: optional blanks, optional sign, digits. Returns the
/// value and the rest.
fn scan_int(s: &str) -> Option<(i64, &str)> {
    let s = s.trim_start_matches(is_c_space);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    // clamp absurdly long numbers instead of overflowing
    let v: i64 = digits[..end].parse().unwrap_or(i64::MAX);
    Some((if neg { -v } else { v }, &digits[end..]))
}

/// `sscanf("%s")`: skips blanks, returns the next blank-free word.
fn scan_word(s: &str) -> (Option<&str>, &str) {
    let s = s.trim_start_matches(is_c_space);
    let end = s.find(is_c_space).unwrap_or(s.len());
    if end == 0 {
        (None, s)
    } else {
        (Some(&s[..end]), &s[end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Keyring {
        parse_authkeys(Path::new("authkeys"), t).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn errs(t: &str) -> Vec<ConfigError> {
        parse_authkeys(Path::new("authkeys"), t).unwrap_err()
    }

    #[test]
    fn seed_file() {
        let k = parse("auth 1\n1 crc\n#2 sha1 sha1_any_password\n#3 md5 md5_any_password\n");
        assert_eq!(k.send_index(), 1);
        assert_eq!(k.keys().len(), 1);
        assert_eq!(k.send_method(), &AuthMethod::Crc);
    }

    #[test]
    fn several_keys_and_sending_index() {
        let k = parse("# keys\n  auth\t2\n1 crc\n2 sha1 somesecret\n3 md5 other extra words\n");
        assert_eq!(k.send_index(), 2);
        assert_eq!(k.send_method(), &AuthMethod::Sha1(b"somesecret".to_vec()));
        assert_eq!(k.keys()[&3], AuthMethod::Md5(b"other".to_vec()));
        assert_eq!(k.keys()[&1], AuthMethod::Crc);
    }

    #[test]
    fn scanf_leniency_of_3_0_6() {
        assert_eq!(parse("auth1\n1crc\n").send_index(), 1);
        assert_eq!(parse("auth 01\n01 crc\n").send_index(), 1);
        assert_eq!(
            parse("auth 0\r\n0 md5 k\r\n").keys()[&0],
            AuthMethod::Md5(b"k".to_vec())
        );
        assert_eq!(parse("auth 2 junk\n2 sha1 s # comment\n").send_index(), 2);
    }

    #[test]
    fn auth_applies_to_following_key_lines_only() {
        // 3.0.6 accepts both and sends with 2 in both cases
        assert_eq!(parse("auth 1\nauth 2\n1 crc\n2 md5 k\n").send_index(), 2);
        assert_eq!(parse("auth 2\n2 md5 k\nauth 1\n").send_index(), 2);
        let e = errs("1 crc\nauth 1\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, Some(2));
        assert!(e[0].msg.contains("comes before"), "{}", e[0].msg);
    }

    #[test]
    fn errors() {
        let cases: &[(&str, usize, &str)] = &[
            ("auth 1\n1 crc # old\n", 2, "takes no key"),
            ("auth 2\n2 sha1\n", 2, "requires a key"),
            ("auth 2\n2 md5\n", 2, "requires a key"),
            ("auth 2\n2 SHA1 k\n", 2, "lower case"),
            ("auth 2\n2 des k\n", 2, "unknown method"),
            ("auth 16\n16 crc\n", 2, "out of range"),
            ("auth 1\n-1 crc\n1 crc\n", 2, "out of range"),
            ("auth x\n1 crc\n", 1, "invalid auth line"),
            ("Auth 1\n1 crc\n", 1, "invalid line"),
            ("auth 1\nfoo bar\n1 crc\n", 2, "invalid line"),
            ("auth 1\n1\n", 2, "without a method"),
            ("auth 1\n1 crc\n1 md5 k\n", 3, "already defined on line 2"),
            ("auth 3\n1 crc\n", 1, "no key with index 3"),
        ];
        for (text, line, what) in cases {
            let e = errs(text);
            assert!(
                e.iter()
                    .any(|e| e.line == Some(*line) && e.msg.contains(what)),
                "{text:?}: want line {line} {what:?}, got {e:?}"
            );
        }
        let e = errs("1 crc\n");
        assert_eq!(e[0].line, None);
        assert!(e[0].msg.contains("no \"auth N\" line"));
        assert!(errs("")
            .iter()
            .any(|e| e.msg.contains("no \"auth N\" line")));
    }

    #[test]
    fn permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("authkeys");
        std::fs::write(&p, "auth 1\n1 crc\n").unwrap();
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o620, true),
            (0o640, false),
            (0o604, false),
            (0o644, false),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = check_permissions(&p);
            assert_eq!(r.is_ok(), ok, "mode {mode:o}: {r:?}");
            if let Err(e) = r {
                assert!(
                    e.msg.starts_with(&format!(
                        "Bad permissions on keyfile [{}], 600 recommended.",
                        p.display()
                    )),
                    "{}",
                    e.msg
                );
            }
        }
        let missing = check_permissions(&dir.path().join("nope")).unwrap_err();
        assert!(missing.msg.contains("cannot read"));
    }
}
