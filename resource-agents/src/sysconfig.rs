//! `/etc/sysconfig/*`-style files: `KEY=value` lines, `#` comments, values
//! optionally in single or double quotes, an optional leading `export`.
//! Errors name the file and the line.

use std::path::Path;

/// One `KEY=value` assignment and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses the text of a sysconfig file; `file` is used in error messages.
pub fn parse(file: &str, text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            return Err(format!("{file}:{line}: expected KEY=value, found {raw:?}"));
        };
        let key = k.trim();
        if key.is_empty()
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || key.as_bytes()[0].is_ascii_digit()
        {
            return Err(format!("{file}:{line}: invalid variable name {key:?}"));
        }
        let v = v.trim();
        let value = if let Some(inner) = v.strip_prefix('"') {
            inner
                .strip_suffix('"')
                .ok_or_else(|| format!("{file}:{line}: unterminated double quote"))?
                .to_string()
        } else if let Some(inner) = v.strip_prefix('\'') {
            inner
                .strip_suffix('\'')
                .ok_or_else(|| format!("{file}:{line}: unterminated single quote"))?
                .to_string()
        } else {
            // unquoted: a trailing comment ends the value
            v.split(" #").next().unwrap_or("").trim().to_string()
        };
        out.push(Entry {
            key: key.to_string(),
            value,
            line,
        });
    }
    Ok(out)
}

/// Reads and parses `path`. `Ok(None)` if the file does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<Entry>>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&path.display().to_string(), &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_quotes_comments() {
        let text = "# lvs settings\nVIP=192.168.136.10\nexport MODE=\"tun\"\n\nDEVICE='tunl0' \nX=a b # note\n";
        let e = parse("/etc/sysconfig/lvs", text).unwrap();
        let kv: Vec<(&str, &str, usize)> = e
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("VIP", "192.168.136.10", 2),
                ("MODE", "tun", 3),
                ("DEVICE", "tunl0", 5),
                ("X", "a b", 6)
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse("/etc/sysconfig/lvs", "VIP=1.2.3.4\nthis is wrong\n").unwrap_err();
        assert_eq!(
            err,
            "/etc/sysconfig/lvs:2: expected KEY=value, found \"this is wrong\""
        );
        let err = parse("f", "MODE=\"tun\n").unwrap_err();
        assert_eq!(err, "f:1: unterminated double quote");
        let err = parse("f", "1X=2\n").unwrap_err();
        assert_eq!(err, "f:1: invalid variable name \"1X\"");
    }
}
