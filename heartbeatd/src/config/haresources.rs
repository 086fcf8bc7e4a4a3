//! `haresources`: one resource group per (logical) line,
//! `NODE RES1 RES2 ...`.
//!
//! The grammar is the one of 3.0.6's `ResourceManager` (which re-reads the
//! file on every call; the daemon itself only checks the node names):
//!
//! * `#` starts a comment anywhere on a line (`sed 's%#.*%%'`);
//! * then a line ending in `\` is joined with the next one, the backslash
//!   and the line break removed and nothing inserted (`a\` + `b` = `ab`);
//! * blanks and tabs are collapsed, empty lines dropped;
//! * the first word is the preferred node, lower-cased (`awk tolower($1)`);
//! * every other word is a resource `script::arg1::arg2...`: the script is
//!   the text before the first `::`, the arguments are split on `::`
//!   (empty ones vanish, as in the shell's word splitting);
//! * a resource that looks like an IP address — the shell pattern
//!   `[0-9]*.[0-9]*.[0-9]*.[0-9]*`: a digit first, then three more dots each
//!   followed by a digit — is shorthand for `IPaddr::` + the word. IPv6
//!   addresses never match it (write `IPv6addr::...`).
//!
//! The group's key, the word 3.0.6 names the group with on the wire and to
//! `ResourceManager`, is its first resource **as written**.
//!
//! Deliberate differences (all make a file 3.0.6 would accept, but that
//! would fail at run time or misbehave, an error here): a node without
//! resources; a script name that is empty or contains `/`; a `\` on the
//! last line. A carriage return (CRLF files) counts as a blank here; 3.0.6
//! keeps it as part of the last word.

use std::path::Path;

use super::{ConfigError, Resource, ResourceGroup};

/// Parses `haresources` text; `path` is used in error messages.
pub fn parse_haresources(path: &Path, text: &str) -> Result<Vec<ResourceGroup>, Vec<ConfigError>> {
    let err = |line: usize, msg: String| ConfigError {
        file: path.to_path_buf(),
        line: Some(line),
        msg,
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();

    // Logical lines: (first physical line number, text).
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let mut line = match raw.find('#') {
            Some(p) => &raw[..p],
            None => raw,
        }
        .replace('\r', " ");
        let continued = line.ends_with('\\');
        if continued {
            line.pop();
        }
        let (start, mut acc) = pending.take().unwrap_or((lineno, String::new()));
        acc.push_str(&line);
        if continued {
            pending = Some((start, acc));
        } else {
            logical.push((start, acc));
        }
    }
    if let Some((start, acc)) = pending {
        errors.push(err(
            start,
            "the last line ends with \"\\\" (a continuation) but the file ends there".into(),
        ));
        logical.push((start, acc));
    }

    for (lineno, text) in logical {
        let mut words = text
            .split([' ', '\t', '\x0c', '\x0b'])
            .filter(|w| !w.is_empty());
        let Some(node) = words.next() else { continue };
        let node = node.to_ascii_lowercase();
        let mut resources = Vec::new();
        let mut bad_words = false;
        for word in words {
            match parse_resource(word) {
                Ok(r) => resources.push(r),
                Err(msg) => {
                    bad_words = true;
                    errors.push(err(lineno, msg));
                }
            }
        }
        if bad_words {
            continue;
        }
        if resources.is_empty() {
            errors.push(err(
                lineno,
                format!(
                    "node {node} has no resources: a group is \"NODE RESOURCE...\" \
                     (e.g. \"{node} IPaddr::10.0.0.10/24/eth0 httpd\")"
                ),
            ));
            continue;
        }
        groups.push(ResourceGroup {
            line: lineno,
            node,
            resources,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// 3.0.6's `isip`: the shell pattern `[0-9]*.[0-9]*.[0-9]*.[0-9]*`.
fn looks_like_ip(word: &str) -> bool {
    let b = word.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    // After the leading digit, find three occurrences of ".<digit>" in order
    // (each `*` may match anything, so a greedy-free scan suffices).
    let mut found = 0;
    let mut i = 1;
    while i + 1 < b.len() && found < 3 {
        if b[i] == b'.' && b[i + 1].is_ascii_digit() {
            found += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    found == 3
}

/// One resource word into its canonical form, script and arguments.
fn parse_resource(word: &str) -> Result<Resource, String> {
    let spec = if looks_like_ip(word) {
        format!("IPaddr::{word}")
    } else {
        word.to_owned()
    };
    let (script, args) = match spec.split_once("::") {
        Some((s, rest)) => (
            s.to_owned(),
            rest.split("::")
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        None => (spec.clone(), Vec::new()),
    };
    if script.is_empty() {
        return Err(format!(
            "resource {word:?} has no script name before \"::\" (write SCRIPT::ARG...)"
        ));
    }
    if script.contains('/') {
        return Err(format!(
            "resource {word:?}: the script name {script:?} contains \"/\"; name a script \
             in resource.d or init.d (e.g. \"httpd\"), not a path"
        ));
    }
    Ok(Resource {
        raw: word.to_owned(),
        spec,
        script,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Vec<ResourceGroup> {
        parse_haresources(Path::new("haresources"), t).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn errs(t: &str) -> Vec<ConfigError> {
        parse_haresources(Path::new("haresources"), t).unwrap_err()
    }

    #[test]
    fn seed_line() {
        let g = parse("loadbalancer lvs IPaddr::192.168.136.10/24/eth0 ipvsadm ldirectord\n");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].node, "loadbalancer");
        assert_eq!(g[0].line, 1);
        let r = &g[0].resources;
        assert_eq!(r.len(), 4);
        assert_eq!((r[0].script.as_str(), r[0].args.len()), ("lvs", 0));
        assert_eq!(r[1].script, "IPaddr");
        assert_eq!(r[1].args, vec!["192.168.136.10/24/eth0"]);
        assert_eq!(g[0].key(), "lvs");
    }

    #[test]
    fn bare_ip_is_ipaddr_and_key_is_as_written() {
        let g = parse("Node1  10.0.0.170 Filesystem::/dev/sda1::/data1::ext2\n");
        assert_eq!(g[0].node, "node1");
        let r = &g[0].resources;
        assert_eq!(r[0].raw, "10.0.0.170");
        assert_eq!(r[0].spec, "IPaddr::10.0.0.170");
        assert_eq!(r[0].script, "IPaddr");
        assert_eq!(r[0].args, vec!["10.0.0.170"]);
        assert_eq!(g[0].key(), "10.0.0.170");
        assert_eq!(r[1].script, "Filesystem");
        assert_eq!(r[1].args, vec!["/dev/sda1", "/data1", "ext2"]);
    }

    #[test]
    fn ip_pattern_is_the_shell_glob() {
        for yes in [
            "1.2.3.4",
            "10.0.0.1/24/eth0",
            "1x.2.3.4",
            "64:ff9b::1.2.3.4",
            "1.2.3.4::x",
        ] {
            assert!(looks_like_ip(yes), "{yes}");
        }
        for no in [
            "a1.2.3.4",
            "1.2.3",
            "fe80::1",
            "2001:db8::1",
            "1.2.3.x",
            "IPaddr::1.2.3.4",
            "1...2",
        ] {
            assert!(!looks_like_ip(no), "{no}");
        }
    }

    #[test]
    fn comments_continuations_and_blanks() {
        let t = "# comment line\n\
                 \n\
                 alpha\tIPaddr::10.0.0.1 \\\n   \
                 httpd # the web server\n\
                 beta   x::a::::b::  # trailing\n\
                 \n";
        let g = parse(t);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].line, 3);
        assert_eq!(g[0].resources.len(), 2);
        assert_eq!(g[0].resources[1].spec, "httpd");
        assert_eq!(g[1].line, 5);
        assert_eq!(g[1].resources[0].args, vec!["a", "b"]);
    }

    #[test]
    fn continuation_joins_without_a_blank_like_sed() {
        let g = parse("alpha a\\\nb c\n");
        let specs: Vec<_> = g[0].resources.iter().map(|r| r.spec.as_str()).collect();
        assert_eq!(specs, ["ab", "c"]);
    }

    #[test]
    fn a_comment_hides_the_continuation() {
        // the comment is stripped first, so the "\" is not at the end
        let g = parse("alpha a \\ # no\nbeta b\n");
        assert_eq!(g.len(), 2);
        let specs: Vec<_> = g[0].resources.iter().map(|r| r.spec.as_str()).collect();
        assert_eq!(specs, ["a", "\\"]);
    }

    #[test]
    fn crlf() {
        let g = parse("alpha IPaddr::10.0.0.1 httpd\r\n");
        assert_eq!(g[0].resources[1].spec, "httpd");
    }

    #[test]
    fn errors_name_the_line() {
        let e = errs("alpha x\n\nbeta\n# c\ngamma ::x a/b::c \\");
        let lines: Vec<_> = e.iter().map(|e| e.line.unwrap()).collect();
        assert_eq!(lines, [5, 3, 5, 5], "{e:?}");
        assert!(e[0].msg.contains("file ends"));
        assert!(e[1].msg.contains("node beta has no resources"));
        assert!(e[2].msg.contains("no script name"));
        assert!(e[3].msg.contains("contains \"/\""));
        assert_eq!(e[1].to_string(), format!("haresources:3: {}", e[1].msg));
    }

    #[test]
    fn empty_file_is_no_groups() {
        assert!(parse("").is_empty());
        assert!(parse("# nothing\n\n").is_empty());
    }
}
