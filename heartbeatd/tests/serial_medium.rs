//! The serial medium on real pseudo-terminals (the lab's null-modem cable),
//! driven by mio loops like the daemon's: port checks and set-up, frames
//! both ways, a big message paced in 512-byte fragments, line noise, a
//! blocked cable (write timeout) and a hung-up cable (reopen).

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use heartbeatd::auth::{AuthMethod, Keyring};
use heartbeatd::daemon::media::{Medium, Received};
use heartbeatd::daemon::serial::{fragment_delay, open_port, Serial, FRAGMENT};
use heartbeatd::wire::{Message, WireError};
use lab::serialwire::{SerialCable, Side};
use mio::{Events, Poll, Token};

fn keys() -> Keyring {
    Keyring::single(2, AuthMethod::Sha1(b"somesecret".to_vec()))
}

/// A medium in its own mio loop.
struct End {
    poll: Poll,
    events: Events,
    m: Serial,
}

impl End {
    fn open(path: &Path) -> End {
        let mut m = Serial::open(path, 19200).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let poll = Poll::new().unwrap();
        m.register(poll.registry(), Token(7)).unwrap();
        End {
            poll,
            events: Events::with_capacity(16),
            m,
        }
    }

    /// Runs the loop for up to `d`: every event makes the medium read (and
    /// write what is due), as in the daemon.
    fn run(&mut self, d: Duration, out: &mut Vec<Received>) {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.poll.poll(&mut self.events, Some(left)).unwrap();
            if !self.events.is_empty() {
                self.m.recv(&keys(), out);
            }
        }
    }

    /// Runs until `want` messages arrived or `secs` passed.
    fn receive(&mut self, want: usize, secs: u64) -> Vec<Received> {
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(secs);
        while got.len() < want && Instant::now() < end {
            self.run(Duration::from_millis(20), &mut got);
        }
        got
    }
}

fn msg(i: usize, filler: usize) -> Message {
    let mut m = Message::new("status");
    m.add("src", "alpha")
        .add("seq", &format!("{i:x}"))
        .add("pad", &"p".repeat(filler));
    m
}

#[test]
fn ports_are_checked_like_3_0_6() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    std::fs::create_dir(&lock).unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    for (dev, want) in [
        ("ttyS0rel", "not full pathname"),
        ("/nonexistent/tty", "Nonexistent serial port"),
        (
            file.to_str().unwrap(),
            "not a char device (it is a regular file",
        ),
        (
            dir.path().to_str().unwrap(),
            "not a char device (it is a directory",
        ),
        (
            "/dev/null",
            "cannot get tty attributes: Inappropriate ioctl for device",
        ),
    ] {
        let e = open_port(Path::new(dev), 19200, &lock)
            .err()
            .unwrap_or_else(|| panic!("{dev} accepted"));
        assert!(e.contains(want), "{dev}: {e}");
    }
    let cable = SerialCable::new(&dir.path().join("w"), None);
    let e = open_port(cable.path(Side::A), 12345, &lock).err().unwrap();
    assert!(e.contains("invalid baudrate [12345]"), "{e}");
    // A line locked by a running process (pid 1) is refused; the lock of a
    // dead one is taken over, and nothing is left behind.
    let lf = lock.join(heartbeatd::daemon::serial::lock_name(cable.path(Side::A)).unwrap());
    std::fs::write(&lf, "         1\n").unwrap();
    let e = open_port(cable.path(Side::A), 19200, &lock).err().unwrap();
    assert!(e.contains("cannot lock line"), "{e}");
    std::fs::write(&lf, format!("{:>10}\n", i32::MAX)).unwrap();
    open_port(cable.path(Side::A), 19200, &lock).unwrap();
    assert!(!lf.exists());
}

#[test]
fn the_port_gets_3_0_6s_settings() {
    let dir = tempfile::tempdir().unwrap();
    let cable = SerialCable::new(dir.path(), None);
    let end = End::open(cable.path(Side::A));
    // Through another descriptor of the same tty, as `stty -F` would.
    let fd = nix::fcntl::open(
        cable.device(Side::A),
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_NONBLOCK,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let t = nix::sys::termios::tcgetattr(fd.as_fd()).unwrap();
    // `stty -g` of a port 3.0.6 had set up (starting from a raw pty, as
    // here): b2:4:800008be:a30:... (heartbeat-serial.md 2.3)
    let words = format!(
        "{:x}:{:x}:{:x}:{:x}",
        t.input_flags.bits(),
        t.output_flags.bits(),
        t.control_flags.bits(),
        t.local_flags.bits()
    );
    assert_eq!(words, "b2:4:800008be:a30");
    use nix::sys::termios::SpecialCharacterIndices::{VMIN, VTIME};
    assert_eq!(t.control_chars[VMIN as usize], 1);
    assert_eq!(t.control_chars[VTIME as usize], 1);
    assert_eq!(
        nix::sys::termios::cfgetospeed(&t),
        nix::sys::termios::BaudRate::B19200
    );
    assert_eq!(end.m.link_name(), cable.path(Side::A).to_str().unwrap());
    assert_eq!(
        end.m.describe(),
        format!("serial {}", cable.path(Side::A).display())
    );
}

#[test]
fn frames_both_ways_and_line_noise_in_between() {
    let dir = tempfile::tempdir().unwrap();
    let cable = SerialCable::new(dir.path(), Some(19200));
    let mut a = End::open(cable.path(Side::A));
    let mut b = End::open(cable.path(Side::B));
    for i in 0..3 {
        a.m.send(&msg(i, 10), &keys()).unwrap();
    }
    b.m.send(&msg(9, 10), &keys()).unwrap();
    let got = b.receive(3, 20);
    let seqs: Vec<_> = got
        .iter()
        .map(|r| r.result.as_ref().unwrap().get("seq").unwrap().to_owned())
        .collect();
    assert_eq!(seqs, ["0", "1", "2"]);
    assert!(got
        .iter()
        .all(|r| r.from == cable.path(Side::A).display().to_string()
            || r.from == cable.path(Side::B).display().to_string()));
    let back = a.receive(1, 20);
    assert_eq!(back[0].result.as_ref().unwrap().get("seq"), Some("9"));
    // What went over the cable is classic frames, nothing else.
    let wire = cable.captured(Side::A);
    assert!(wire.starts_with(b">>>\nt=status\nsrc=alpha\nseq=0\n"));
    assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 3 * 7);

    // Noise: a garbage line is skipped; a forged frame is rejected; CRLF and
    // bit 7 are taken; garbage without a newline costs the next frame.
    let before = cable.stats().delivered[0];
    cable.inject(Side::B, b"this is line noise\n");
    let mut forged =
        msg(20, 0).encode_classic(&Keyring::single(2, AuthMethod::Sha1(b"wrong".to_vec())));
    forged.insert(0, b'\n');
    cable.inject(Side::B, &forged);
    let crlf: Vec<u8> = msg(21, 0)
        .encode_classic(&keys())
        .iter()
        .flat_map(|c| {
            if *c == b'\n' {
                vec![b'\r' | 0x80, b'\n']
            } else {
                vec![*c | 0x80]
            }
        })
        .collect();
    cable.inject(Side::B, &crlf);
    cable.inject(Side::B, b"xyz");
    // (let the noise cross before the real frames follow it)
    let noise = 19 + forged.len() + crlf.len() + 3;
    lab::wait_until(Duration::from_secs(10), || {
        (cable.stats().delivered[0] >= before + noise).then_some(())
    });
    a.m.send(&msg(22, 0), &keys()).unwrap();
    a.m.send(&msg(23, 0), &keys()).unwrap();
    let got = b.receive(3, 20);
    assert_eq!(got.len(), 3, "forged, crlf, 23");
    assert!(matches!(got[0].result, Err(WireError::Auth(_))));
    assert_eq!(got[1].result.as_ref().unwrap().get("seq"), Some("15"));
    assert_eq!(
        got[2].result.as_ref().unwrap().get("seq"),
        Some("17"),
        "22 was glued to xyz"
    );
}

#[test]
fn a_big_message_goes_out_in_paced_fragments_and_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cable = SerialCable::new(dir.path(), None);
    let mut a = End::open(cable.path(Side::A));
    let mut b = End::open(cable.path(Side::B));
    let big = msg(1, 3000);
    let len = big.encode_classic(&keys()).len();
    assert!(len > 6 * FRAGMENT && len < 7 * FRAGMENT);
    let t_send = Instant::now();
    a.m.send(&big, &keys()).unwrap();
    a.m.send(&msg(2, 0), &keys()).unwrap();
    // The sender's loop and the receiver's run side by side.
    let handle = std::thread::spawn(move || {
        let mut sink = Vec::new();
        a.run(Duration::from_secs(3), &mut sink);
        a
    });
    let got = b.receive(2, 20);
    let _a = handle.join().unwrap();
    assert_eq!(got.len(), 2);
    let mut whole = got[0].result.clone().unwrap();
    whole.remove("auth");
    assert_eq!(whole, big);
    assert_eq!(got[1].result.as_ref().unwrap().get("seq"), Some("2"));
    // Pacing: by any moment, at most one fragment per 213 ms since the send
    // has crossed the cable (a bound the timer can only make looser).
    let pace = fragment_delay(19200);
    let mut total = 0;
    // (capture times count from the cable's start, before the send)
    let start = t_send.saturating_duration_since(cable.started());
    for (at, c) in cable.chunks(Side::A) {
        total += c.len();
        let since = at.saturating_sub(start);
        let fragments = (since.as_secs_f64() / pace.as_secs_f64()).floor() as usize + 1;
        assert!(
            total.min(len) <= fragments * FRAGMENT,
            "{total} bytes {since:?} after the send"
        );
    }
    assert_eq!(total, len + msg(2, 0).encode_classic(&keys()).len());
}

#[test]
fn a_blocked_cable_times_out_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let cable = SerialCable::new(dir.path(), None);
    let mut a = End::open(cable.path(Side::A));
    let mut b = End::open(cable.path(Side::B));
    cable.block();
    assert!(
        msg(0, 400).encode_classic(&keys()).len() < FRAGMENT,
        "unpaced frames"
    );
    // Keep sending (like heartbeats) until the port has refused bytes for
    // 500 ms: the send reports the write timeout once.
    let mut err = None;
    let end = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while err.is_none() && Instant::now() < end {
        if let Err(e) = a.m.send(&msg(i, 400), &keys()) {
            err = Some(e.to_string());
        }
        i += 1;
        let mut sink = Vec::new();
        a.run(Duration::from_millis(20), &mut sink);
    }
    let err = err.expect("no write timeout while the cable was blocked");
    assert!(err.contains("TTY write timeout on ["), "{err}");
    assert!(a.m.queued() < 64 * 1024, "the queue was dropped");
    // Once an hour only: the next timeouts (the cable is still blocked)
    // are quiet.
    for j in 0..100 {
        if let Err(e) = a.m.send(&msg(i + j, 400), &keys()) {
            panic!("reported again: {e}");
        }
        let mut sink = Vec::new();
        a.run(Duration::from_millis(10), &mut sink);
    }
    // Heal: new messages arrive.
    cable.heal();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    let marker = msg(0xfff, 0);
    while Instant::now() < end
        && !got
            .iter()
            .any(|r: &Received| r.result.as_ref().is_ok_and(|m| m.get("seq") == Some("fff")))
    {
        let _ = a.m.send(&marker, &keys());
        let mut sink = Vec::new();
        a.run(Duration::from_millis(50), &mut sink);
        b.run(Duration::from_millis(50), &mut got);
    }
    assert!(
        got.iter()
            .any(|r| r.result.as_ref().is_ok_and(|m| m.get("seq") == Some("fff"))),
        "nothing got through after the heal: {:?} {} {:?}",
        cable.stats(),
        a.m.queued(),
        got.iter()
            .map(|r| r
                .result
                .as_ref()
                .map(|m| m.get("seq").unwrap_or("?").to_owned()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_hung_up_port_is_reopened_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cable = SerialCable::new(dir.path(), None);
    let mut a = End::open(cable.path(Side::A));
    // The relay goes away: the pty hangs up under the open port.
    drop(cable);
    let mut sink = Vec::new();
    a.run(Duration::from_millis(300), &mut sink);
    assert!(!a.m.is_open(), "the hang-up is noticed");
    let e = a.m.send(&msg(1, 0), &keys()).unwrap_err().to_string();
    assert!(
        e.contains("reopened every 1 s") || e.contains("reopening"),
        "{e}"
    );
    // A new cable at the same place: the medium finds it by itself.
    let cable = SerialCable::new(dir.path(), None);
    let mut b = End::open(cable.path(Side::B));
    let ok = lab::wait_until(Duration::from_secs(20), || {
        a.run(Duration::from_millis(50), &mut sink);
        a.m.is_open().then_some(())
    });
    assert!(ok.is_some(), "not reopened");
    a.m.send(&msg(2, 0), &keys()).unwrap();
    let got = b.receive(1, 20);
    assert_eq!(got[0].result.as_ref().unwrap().get("seq"), Some("2"));
}
