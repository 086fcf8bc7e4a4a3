//! Every captured heartbeat 3.0.6 packet decodes, verifies, and re-encodes
//! to the identical bytes (tests/data/wire, see its README for the keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heartbeatd::auth::{AuthMethod, Keyring};
use heartbeatd::wire::{self, classic, f, netstring, Message};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wire")
}

fn sha1() -> AuthMethod {
    AuthMethod::Sha1(b"somesecret".to_vec())
}
fn md5() -> AuthMethod {
    AuthMethod::Md5(b"somesecret".to_vec())
}

/// Every key used by the captures, as run5's nodes had them.
fn all_keys(send: u8) -> Keyring {
    Keyring::new(
        send,
        BTreeMap::from([(1, AuthMethod::Crc), (2, sha1()), (3, md5())]),
    )
    .unwrap()
}

/// The key a vector file was signed with (its "authkeys:" header line).
fn vector_key(text: &str) -> (u8, AuthMethod) {
    let line = text
        .lines()
        .find(|l| l.starts_with("# authkeys:"))
        .expect("authkeys header");
    if line.contains("sha1 somesecret") {
        (2, sha1())
    } else if line.contains("md5 somesecret") {
        (3, md5())
    } else if line.contains("1 crc") {
        (1, AuthMethod::Crc)
    } else {
        panic!("unknown key in {line}")
    }
}

/// The hex block after `label` (indented lines of hex digits).
fn hex_block(text: &str, label: &str) -> Vec<u8> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(label)).skip(1);
    let mut hex = String::new();
    for l in lines.by_ref() {
        let t = l.trim();
        if !l.starts_with("  ") || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            break;
        }
        hex.push_str(t);
    }
    assert!(!hex.is_empty(), "no {label} block");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The `fields (wire order ...)` listing: (type, name, value as shown).
fn listed_fields(text: &str) -> Vec<(u8, String, String)> {
    text.lines()
        .skip_while(|l| !l.starts_with("fields ("))
        .skip(1)
        .take_while(|l| l.starts_with("  ("))
        .map(|l| {
            // Values keep trailing blanks ("nodelist = alpha beta ").
            let l = l.trim_start();
            let ty = l.as_bytes()[1] - b'0';
            let (name, value) = l[4..].split_once(" = ").unwrap();
            let value = value.split("  [").next().unwrap().to_owned();
            (ty, name.to_owned(), value)
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check_fields(name: &str, msg: &Message, listed: &[(u8, String, String)]) {
    assert_eq!(msg.fields.len(), listed.len(), "{name}: field count");
    for (fl, (ty, n, v)) in msg.fields.iter().zip(listed) {
        assert_eq!((fl.ty, &fl.name), (*ty, n), "{name}");
        let shown = if fl.ty == 1 {
            hex(&fl.value)
        } else {
            String::from_utf8(fl.value.clone()).unwrap()
        };
        assert_eq!(&shown, v, "{name}: field {n}");
    }
}

fn without_auth(m: &Message) -> Message {
    let mut m = m.clone();
    m.remove(f::AUTH)
        .expect("captured messages carry an auth field");
    m
}

fn vector_files(prefix_digit: bool) -> Vec<(String, String)> {
    let mut v: Vec<_> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".txt"))
        .filter(|n| n.as_bytes()[0].is_ascii_digit() == prefix_digit)
        // serial-2x are byte streams, not single frames (tests/serial_vectors.rs)
        .filter(|n| !n.starts_with("serial-2"))
        .map(|n| {
            let t = std::fs::read_to_string(data_dir().join(&n)).unwrap();
            (n, t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn udp_vectors_decode_verify_and_reencode_identically() {
    let files = vector_files(true);
    assert_eq!(files.len(), 20, "expected the 20 UDP vectors");
    for (name, text) in files {
        let payload = hex_block(&text, "payload_hex:");
        let (idx, method) = vector_key(&text);
        let keys = Keyring::single(idx, method);
        let msg = wire::decode_verified(&payload, &keys).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_fields(&name, &msg, &listed_fields(&text));
        // The inner auth field is right too.
        let text_signed = classic::signing_text(&msg.fields);
        assert!(
            keys.verify(msg.get_bytes(f::AUTH).unwrap(), &text_signed)
                .is_ok(),
            "{name}: inner auth"
        );
        assert_eq!(
            without_auth(&msg).encode_netstring(&keys),
            payload,
            "{name}: re-encoding differs"
        );
    }
}

#[test]
fn a_wrong_key_or_a_flipped_byte_is_rejected() {
    let text = std::fs::read_to_string(data_dir().join("01-status-init.txt")).unwrap();
    let payload = hex_block(&text, "payload_hex:");
    let wrong = Keyring::single(2, AuthMethod::Sha1(b"othersecret".to_vec()));
    assert!(matches!(
        wire::decode_verified(&payload, &wrong),
        Err(wire::WireError::Auth(_))
    ));
    let keys = Keyring::single(2, sha1());
    for i in (0..payload.len()).step_by(7) {
        let mut p = payload.clone();
        p[i] ^= 0x20;
        assert!(wire::decode_verified(&p, &keys).is_err(), "flip at {i}");
    }
}

#[test]
fn serial_vectors_decode_verify_and_reencode_identically() {
    let files = vector_files(false);
    assert_eq!(files.len(), 11, "expected serial-01..11");
    for (name, text) in files {
        let frame = hex_block(&text, "frame_hex:");
        let (idx, method) = vector_key(&text);
        let keys = Keyring::single(idx, method);
        let msg = wire::decode_verified(&frame, &keys).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_fields(&name, &msg, &listed_fields(&text));
        assert_eq!(
            without_auth(&msg).encode_classic(&keys),
            frame,
            "{name}: re-encoding differs"
        );
    }
}

/// UDP payloads to or from port 694 in a pcap (Ethernet or Linux cooked).
fn pcap_payloads(path: &Path) -> Vec<Vec<u8>> {
    let d = std::fs::read(path).unwrap();
    let le = match &d[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("{}: not a pcap ({m:02x?})", path.display()),
    };
    let u32at = |o: usize| {
        let b: [u8; 4] = d[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = u32at(20);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32at(off + 8) as usize;
        let pkt = &d[off + 16..off + 16 + incl];
        off += 16 + incl;
        let ip = match linktype {
            1 if pkt[12..14] == [8, 0] => &pkt[14..],
            113 if pkt[14..16] == [8, 0] => &pkt[16..],
            101 => pkt,
            _ => continue,
        };
        if ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = ((ip[0] & 15) * 4) as usize;
        let udp = &ip[ihl..];
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
        if sport == 694 || dport == 694 {
            out.push(udp[8..ulen].to_vec());
        }
    }
    out
}

#[test]
fn every_packet_of_the_captured_runs_verifies_and_reencodes() {
    // (file, keyring used to verify, minimum packet count)
    let runs: [(&str, Keyring, usize); 5] = [
        ("run1-sha1-lifecycle.pcap", Keyring::single(2, sha1()), 4000),
        ("run2-sha1-rexmit.pcap", Keyring::single(2, sha1()), 90),
        ("run3-md5.pcap", Keyring::single(3, md5()), 200),
        ("run4-crc.pcap", Keyring::single(1, AuthMethod::Crc), 200),
        ("run5-mixed-keys.pcap", all_keys(2), 200),
    ];
    for (file, keys, min) in runs {
        let payloads = pcap_payloads(&data_dir().join(file));
        assert!(payloads.len() >= min, "{file}: {} packets", payloads.len());
        let mut indexes = std::collections::BTreeSet::new();
        for (i, p) in payloads.iter().enumerate() {
            let msg = wire::decode_verified(p, &keys)
                .unwrap_or_else(|e| panic!("{file} packet {i}: {e}"));
            // Re-encode with the key the packet was sent with.
            let d = netstring::decode(p).unwrap();
            let idx: u8 = std::str::from_utf8(d.outer_auth.unwrap())
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            indexes.insert(idx);
            let sender = Keyring::single(idx, keys.keys()[&idx].clone());
            assert_eq!(
                &without_auth(&msg).encode_netstring(&sender),
                p,
                "{file} packet {i}: re-encoding differs"
            );
        }
        if file.starts_with("run5") {
            assert_eq!(indexes.into_iter().collect::<Vec<_>>(), vec![2, 3]);
        }
    }
}
