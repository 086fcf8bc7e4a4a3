//! The serial framer and frame decoder against byte streams a REAL heartbeat
//! 3.0.6 produced on a (simulated) null-modem cable, and the injected noise
//! and malformed frames with the real receiver's reactions
//! (`tests/data/wire/serial-2x-*.txt`, copied from the reference captures),
//! plus properties: any split of a stream gives the same frames; frames
//! survive line noise between them, bit 7 and CRs; the write queue cuts a
//! big frame like 3.0.6.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use heartbeatd::auth::{AuthError, AuthMethod, Keyring};
use heartbeatd::daemon::serial::{
    decode_frame, fragment_delay, Framer, Next, WriteQueue, FRAGMENT,
};
use heartbeatd::wire::{classic, f, Message, WireError};
use proptest::prelude::*;

fn data(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/wire")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn keys() -> Keyring {
    Keyring::single(2, AuthMethod::Sha1(b"somesecret".to_vec()))
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The hex lines (two-space indented) right after the first line starting
/// with `label`, from `text`.
fn hex_after(text: &str, label: &str) -> Vec<u8> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(label)).skip(1);
    let mut hex = String::new();
    for l in lines.by_ref() {
        let t = l.trim();
        if !l.starts_with("  ") || t.is_empty() || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            break;
        }
        hex.push_str(t);
    }
    assert!(!hex.is_empty(), "no hex after {label:?}");
    unhex(&hex)
}

fn frame_all(stream: &[u8]) -> (Vec<Result<Vec<u8>, WireError>>, Framer) {
    let mut fr = Framer::new();
    let mut out = Vec::new();
    fr.push(stream, &mut out);
    (out, fr)
}

fn frame_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Result<Vec<u8>, WireError>> {
    let mut fr = Framer::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort();
    for c in cuts {
        fr.push(&stream[at..c.max(at)], &mut out);
        at = c.max(at);
    }
    fr.push(&stream[at..], &mut out);
    out
}

/// `k=v` tokens of a listing line after `after`, up to a `(` or the end.
fn listed(line: &str, after: &str) -> Fields {
    let rest = &line[line.find(after).unwrap() + after.len()..];
    let rest = rest.split("  (").next().unwrap();
    rest.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn check_fields(what: &str, msg: &Message, fields: &[(String, String)]) {
    for (k, v) in fields {
        assert_eq!(msg.get(k), Some(v.as_str()), "{what}: field {k}");
    }
}

/// `k=v` pairs listed for a frame.
type Fields = Vec<(String, String)>;

struct Stream {
    name: String,
    bytes: Vec<u8>,
    /// (start, end, listed fields)
    frames: Vec<(usize, usize, Fields)>,
}

fn startup_streams() -> Vec<Stream> {
    let text = data("serial-20-stream-startup.txt");
    let mut out = Vec::new();
    for dir in ["A>B", "B>A"] {
        let head = format!("stream {dir} ");
        let bytes = hex_after(&text, &head);
        let declared: usize = text
            .lines()
            .find(|l| l.starts_with(&head))
            .and_then(|l| l.split(", ").nth(1))
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("stream length");
        assert_eq!(bytes.len(), declared, "{dir}");
        let frames = text
            .lines()
            .skip_while(|l| !l.starts_with(&format!("frames in stream {dir}")))
            .skip(1)
            .take_while(|l| l.starts_with("  ["))
            .map(|l| {
                let inner = &l[l.find('[').unwrap() + 1..l.find(')').unwrap()];
                let (a, b) = inner.split_once("..").unwrap();
                assert!(l.contains("auth=ok"));
                (
                    a.trim().parse().unwrap(),
                    b.trim().parse().unwrap(),
                    listed(l, "auth=ok"),
                )
            })
            .collect::<Vec<_>>();
        assert!(frames.len() >= 17, "{dir}: {} frames listed", frames.len());
        out.push(Stream {
            name: dir.to_owned(),
            bytes,
            frames,
        });
    }
    out
}

#[test]
fn startup_streams_give_exactly_the_listed_frames_all_authentic() {
    for s in startup_streams() {
        let (got, framer) = frame_all(&s.bytes);
        assert_eq!(got.len(), s.frames.len(), "{}", s.name);
        for (g, (a, b, fields)) in got.iter().zip(&s.frames) {
            let g = g.as_ref().unwrap();
            assert_eq!(g.as_slice(), &s.bytes[*a..*b], "{} [{a}..{b})", s.name);
            let msg =
                decode_frame(g, &keys()).unwrap_or_else(|e| panic!("{} [{a}..{b}): {e}", s.name));
            check_fields(&format!("{} [{a}..{b})", s.name), &msg, fields);
            // And we write the same bytes for the same message.
            let mut m = msg.clone();
            m.remove(f::AUTH);
            assert_eq!(m.encode_classic(&keys()), *g, "{} re-encoded", s.name);
        }
        // The cut-off tail is an unfinished frame (A>B) or an unfinished
        // start line (B>A): nothing more comes out, nothing is lost yet.
        let end = s.frames.last().unwrap().1;
        let tail = &s.bytes[end..];
        assert!(tail.starts_with(b">>>"), "{}", s.name);
        assert_eq!(framer.in_frame(), tail.contains(&b'\n'), "{}", s.name);
        // Byte by byte, the same.
        let cuts: Vec<usize> = (0..s.bytes.len()).collect();
        assert_eq!(
            frame_in_pieces(&s.bytes, &cuts),
            got,
            "{} byte by byte",
            s.name
        );
    }
}

/// One case of serial-21.
struct Case {
    title: String,
    injected: Vec<u8>,
    context: Vec<u8>,
    offset: usize,
    /// (len, verdict "ok" | "BAD/none" | "UNPARSABLE", fields)
    frames: Vec<(usize, String, Fields)>,
    observed: String,
}

fn noise_cases() -> Vec<Case> {
    let text = data("serial-21-noise-and-malformed.txt");
    let mut cases = Vec::new();
    for block in text.split("\n== case: ").skip(1) {
        let title = block.lines().next().unwrap().to_owned();
        let injected = hex_after(block, "injected (");
        let ctx_line = block.lines().find(|l| l.starts_with("context (")).unwrap();
        let offset = ctx_line
            .split("at offset ")
            .nth(1)
            .and_then(|t| t.trim_end_matches(':').trim_end_matches(')').parse().ok())
            .expect("offset");
        let context = hex_after(block, "context (");
        let frames = block
            .lines()
            .filter(|l| l.trim_start().starts_with("frame len="))
            .map(|l| {
                let len = l
                    .split("len=")
                    .nth(1)
                    .and_then(|t| t.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap();
                let (verdict, fields) = if l.contains("UNPARSABLE") {
                    ("UNPARSABLE".to_owned(), Vec::new())
                } else if l.contains("auth=ok") {
                    ("ok".to_owned(), listed(l, "auth=ok"))
                } else {
                    assert!(l.contains("auth=BAD/none"), "{l}");
                    ("BAD/none".to_owned(), listed(l, "auth=BAD/none"))
                };
                (len, verdict, fields)
            })
            .collect();
        let observed = block
            .lines()
            .find(|l| l.starts_with("observed:"))
            .unwrap_or_default()
            .to_owned();
        cases.push(Case {
            title,
            injected,
            context,
            offset,
            frames,
            observed,
        });
    }
    assert_eq!(cases.len(), 15, "serial-21 has 15 cases");
    cases
}

#[test]
fn noise_and_malformed_frames_get_the_real_receivers_treatment() {
    for c in noise_cases() {
        let t = &c.title;
        assert_eq!(
            &c.context[c.offset..c.offset + c.injected.len()],
            c.injected.as_slice(),
            "{t}: the injection is where the vector says"
        );
        let (got, _) = frame_all(&c.context);
        assert_eq!(got.len(), c.frames.len(), "{t}: {:?}", c.observed);
        let mut outcomes = Vec::new();
        for (g, (len, verdict, fields)) in got.iter().zip(&c.frames) {
            let g = g.as_ref().unwrap();
            assert_eq!(g.len(), *len, "{t}");
            let res = decode_frame(g, &keys());
            match verdict.as_str() {
                "ok" => {
                    let m = res.as_ref().unwrap_or_else(|e| panic!("{t}: {e}"));
                    check_fields(t, m, fields);
                }
                "BAD/none" => {
                    assert!(matches!(res, Err(WireError::Auth(_))), "{t}: {res:?}");
                    // It parses; only the authentication fails.
                    check_fields(t, &classic::decode(g).unwrap(), fields);
                }
                _ => assert!(matches!(res, Err(WireError::Malformed(_))), "{t}: {res:?}"),
            }
            outcomes.push(res);
        }
        // The reasons match what the real receiver logged.
        let gamma = outcomes.iter().find(|r| match r {
            Ok(m) => m.get(f::SRC) == Some("gamma"),
            Err(_) => true,
        });
        if t.contains("one hex digit of auth changed") {
            assert!(matches!(
                gamma,
                Some(Err(WireError::Auth(AuthError::Mismatch { index: 2, .. })))
            ));
        } else if t.contains("without any auth= line") {
            assert!(matches!(
                gamma,
                Some(Err(WireError::Auth(AuthError::Missing)))
            ));
        } else if t.contains("key index 3") {
            assert!(matches!(
                gamma,
                Some(Err(WireError::Auth(AuthError::UnknownIndex(3))))
            ));
        } else if t.contains("'xyz'") || t.contains("netstring") {
            // The injected bytes and the real frame they run into are lost.
            assert!(got.is_empty(), "{t}");
        }
    }
}

#[test]
fn a_big_message_goes_out_in_3_0_6s_fragments_and_pauses() {
    let text = data("serial-22-big-message-fragments.txt");
    let frame = hex_after(&text, "frame_hex:");
    assert_eq!(frame.len(), 3409);
    let (got, framer) = frame_all(&frame);
    assert!(!framer.in_frame());
    let msg = decode_frame(got[0].as_ref().unwrap(), &keys()).unwrap();
    assert_eq!(msg.msg_type(), Some("bigtest"));
    let mut plain = msg.clone();
    plain.remove(f::AUTH);
    assert_eq!(plain.encode_classic(&keys()), frame);

    // The arrival listing: the first read also held the tail of the status
    // frame before; the last one the frames queued behind.
    let arrivals: Vec<(f64, usize)> = text
        .lines()
        .skip_while(|l| !l.starts_with("arrival of the bytes"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with('+'))
        .map(|l| {
            let mut w = l.split_whitespace();
            let t: f64 = w.next().unwrap().trim_start_matches('+').parse().unwrap();
            w.next(); // "s"
            (t, w.next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(arrivals.len(), 8);

    // Our write queue, with a port that takes everything: the same cuts at
    // the same moments (the capture's times carry the relay's read delay,
    // a millisecond at most).
    let t0 = Instant::now();
    let mut q = WriteQueue::new(fragment_delay(19200));
    assert!(q.push(frame.clone()));
    let mut now = t0;
    let mut writes: Vec<(Duration, usize)> = Vec::new();
    loop {
        match q.next(now) {
            Next::Write(b) => {
                let n = b.len();
                writes.push((now - t0, n));
                q.wrote(now, n);
            }
            Next::Wait(t) => now = t,
            Next::Idle => break,
        }
    }
    let sizes: Vec<usize> = writes.iter().map(|w| w.1).collect();
    assert_eq!(sizes, [FRAGMENT, 512, 512, 512, 512, 512, 337]);
    for (i, (at, _)) in writes.iter().enumerate() {
        let seen = arrivals[i].0;
        assert!(
            (at.as_secs_f64() - seen).abs() <= 0.0015,
            "fragment {i}: ours at {at:?}, 3.0.6's arrived at +{seen}"
        );
    }
    assert_eq!(arrivals[0].1 - 512, 205, "a status frame's tail came first");
    assert!(arrivals[1..6].iter().all(|a| a.1 == 512));
    assert_eq!(arrivals[6].1, 337);
}

fn message_strategy() -> impl Strategy<Value = Message> {
    let name = "[a-z][a-z0-9_]{0,8}";
    let value = "[ -~]{0,40}"; // printable ASCII: what goes through ISTRIP/IGNCR
    (
        proptest::collection::vec((name, value), 1..8),
        proptest::collection::vec(any::<u8>(), 16),
    )
        .prop_map(|(fields, uuid)| {
            let mut m = Message::new("status");
            m.add_binary("srcuuid", &uuid);
            for (k, v) in fields {
                if k != "auth" && k != "t" {
                    m.add(&k, &v);
                }
            }
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_of_a_real_stream_gives_the_same_frames(
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        which in 0usize..2,
    ) {
        let s = &startup_streams()[which];
        let (whole, _) = frame_all(&s.bytes);
        prop_assert_eq!(frame_in_pieces(&s.bytes, &cuts), whole);
    }

    #[test]
    fn any_split_of_a_noisy_context_gives_the_same_frames(
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        which in 0usize..15,
    ) {
        let c = &noise_cases()[which];
        let (whole, _) = frame_all(&c.context);
        prop_assert_eq!(frame_in_pieces(&c.context, &cuts), whole);
    }

    #[test]
    fn frames_survive_noise_lines_bit_7_and_crs(
        msgs in proptest::collection::vec(message_strategy(), 1..5),
        noise in proptest::collection::vec("[ -=?-~][ -~]{0,30}", 5),
        high in any::<bool>(),
        crlf in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let k = keys();
        let mut stream = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            stream.extend_from_slice(noise[i].as_bytes());
            stream.push(b'\n');
            stream.extend_from_slice(&m.encode_classic(&k));
        }
        if crlf {
            stream = stream.iter().flat_map(|b| if *b == b'\n' { vec![b'\r', b'\n'] } else { vec![*b] }).collect();
        }
        if high {
            for b in &mut stream { *b |= 0x80; }
        }
        let got = frame_in_pieces(&stream, &cuts);
        prop_assert_eq!(got.len(), msgs.len());
        for (g, m) in got.iter().zip(&msgs) {
            let mut d = decode_frame(g.as_ref().unwrap(), &k).unwrap();
            d.remove(f::AUTH);
            prop_assert_eq!(&d, m);
        }
    }
}
