//! `lab::serialwire`: a null-modem cable for tests, made of two
//! pseudo-terminals.
//!
//! [`SerialCable::new`] creates two pty pairs and links `DIR/ttyA` and
//! `DIR/ttyB` to their slave devices (`/dev/pts/N`). Whatever a program
//! writes on `ttyA` comes out of `ttyB` and the other way round, relayed by a
//! thread of the test that reads both masters. Like a real cable it can be
//!
//! * **throttled** to a baud rate (8N1: baud / 10 bytes per second per
//!   direction), with up to 4 KiB queued per direction like a UART's
//!   transmit buffer; when the queue is full the relay stops reading the
//!   sender, whose tty buffer then fills;
//! * **cut** ([`SerialCable::cut`]): bytes are read from both sides and
//!   thrown away (a pulled cable), [`SerialCable::block`]ed: nothing is read
//!   (the pty analogue of CTS low: writers' buffers fill and their writes
//!   eventually fail with EAGAIN), and [`SerialCable::heal`]ed;
//! * fed **line noise** ([`SerialCable::inject`]).
//!
//! Every delivered byte is captured per direction with its time
//! ([`SerialCable::chunks`], [`SerialCable::captured`]). A receiver that
//! has not read for a second (a stopped node) loses bytes like a UART
//! overrun instead of holding the sender back. The relay keeps both slaves open itself, so a
//! node closing and reopening its port never hangs the pty up, and sets
//! them raw with echo off before anybody uses them (a fresh pty echoes).
//! Dropping the cable stops the thread, closes the ptys (open slaves see a
//! hang-up) and removes the links. All descriptors are close-on-exec, so
//! nodes started by the test never inherit a master.
//!
//! The relay thread asks for SCHED_RR priority 2 (above a real heartbeat's
//! RR 1, as the reference lab did) so that a busy host stalls it less; if
//! that is not allowed it runs normally.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, LocalFlags, SetArg};

/// One end of the cable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What the cable does with bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CableMode {
    /// Relays both ways.
    Heal,
    /// Reads and discards (a pulled cable).
    Cut,
    /// Reads nothing (flow control holds both senders).
    Block,
}

/// Counters per direction (index 0 = A>B, 1 = B>A).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CableStats {
    /// Bytes delivered to the receiving side.
    pub delivered: [usize; 2],
    /// Bytes thrown away while cut.
    pub discarded: [usize; 2],
    /// Bytes lost because the receiver took nothing for [`OVERRUN_AFTER`].
    pub overrun: [usize; 2],
}

/// Per-direction queue limit (a UART's transmit buffer).
pub const QUEUE_LIMIT: usize = 4096;
/// A receiver that takes nothing for this long loses what is queued for it.
pub const OVERRUN_AFTER: Duration = Duration::from_secs(1);
/// Capture limit per direction; later bytes are relayed but not captured.
pub const CAPTURE_LIMIT: usize = 32 << 20;

struct State {
    mode: CableMode,
    stop: bool,
    /// Bytes to deliver to side i.
    inject: [Vec<u8>; 2],
    /// Delivered chunks written by side i, with their time since start.
    capture: [Vec<(Duration, Vec<u8>)>; 2],
    captured: [usize; 2],
    stats: CableStats,
}

/// A running simulated null-modem cable. See the module doc.
pub struct SerialCable {
    started: Instant,
    links: [PathBuf; 2],
    devices: [PathBuf; 2],
    baud: Option<u32>,
    state: Arc<Mutex<State>>,
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

fn pty_pair() -> (OwnedFd, OwnedFd, PathBuf) {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .unwrap_or_else(|e| panic!("serialwire: cannot open /dev/ptmx: {e}"));
    nix::pty::grantpt(&master).expect("grantpt");
    nix::pty::unlockpt(&master).expect("unlockpt");
    let name = PathBuf::from(nix::pty::ptsname_r(&master).expect("ptsname"));
    let slave = nix::fcntl::open(
        &name,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("serialwire: cannot open {}: {e}", name.display()));
    // Raw, no echo: bytes arriving before a node sets the port up must not
    // be echoed back onto the cable.
    let mut t = termios::tcgetattr(&slave).expect("tcgetattr on a fresh pty");
    termios::cfmakeraw(&mut t);
    t.local_flags
        .remove(LocalFlags::ECHO | LocalFlags::ECHONL | LocalFlags::ICANON | LocalFlags::ISIG);
    termios::tcsetattr(&slave, SetArg::TCSANOW, &t).expect("tcsetattr on a fresh pty");
    let master: OwnedFd = master.into();
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .expect("non-blocking master");
    (master, slave, name)
}

impl SerialCable {
    /// Creates the cable: `dir/ttyA` and `dir/ttyB` (dir is created if
    /// missing; old links are replaced). `baud` None relays as fast as the
    /// ptys go.
    pub fn new(dir: &Path, baud: Option<u32>) -> SerialCable {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("serialwire: cannot create {}: {e}", dir.display()));
        let (ma, sa, na) = pty_pair();
        let (mb, sb, nb) = pty_pair();
        let links = [dir.join("ttyA"), dir.join("ttyB")];
        for (l, n) in links.iter().zip([&na, &nb]) {
            let _ = std::fs::remove_file(l);
            std::os::unix::fs::symlink(n, l)
                .unwrap_or_else(|e| panic!("serialwire: cannot link {}: {e}", l.display()));
        }
        let (wake_r, wake_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).expect("serialwire: pipe");
        let started = Instant::now();
        let state = Arc::new(Mutex::new(State {
            mode: CableMode::Heal,
            stop: false,
            inject: [Vec::new(), Vec::new()],
            capture: [Vec::new(), Vec::new()],
            captured: [0, 0],
            stats: CableStats::default(),
        }));
        let relay = Relay {
            masters: [ma, mb],
            _slaves: [sa, sb],
            wake: wake_r,
            state: Arc::clone(&state),
            bps: baud.map(|b| f64::from(b) / 10.0),
            queues: [VecDeque::new(), VecDeque::new()],
            free_at: [started, started],
            full_since: [None, None],
            start: started,
        };
        let thread = std::thread::Builder::new()
            .name("serialwire".into())
            .spawn(move || relay.run())
            .expect("serialwire: spawn relay thread");
        SerialCable {
            started,
            links,
            devices: [na, nb],
            baud,
            state,
            wake: wake_w,
            thread: Some(thread),
        }
    }

    /// The link a node configures (`DIR/ttyA`, `DIR/ttyB`).
    pub fn path(&self, side: Side) -> &Path {
        &self.links[side.index()]
    }

    /// The pty slave behind the link (`/dev/pts/N`).
    pub fn device(&self, side: Side) -> &Path {
        &self.devices[side.index()]
    }

    /// The moment capture times count from.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn baud(&self) -> Option<u32> {
        self.baud
    }

    fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap());
        let _ = nix::unistd::write(&self.wake, b"x");
    }

    /// Pulls the cable: from now on bytes vanish (queued ones too).
    pub fn cut(&self) {
        self.set(|s| s.mode = CableMode::Cut);
    }

    /// Holds both senders (nothing is read any more).
    pub fn block(&self) {
        self.set(|s| s.mode = CableMode::Block);
    }

    /// Back to relaying.
    pub fn heal(&self) {
        self.set(|s| s.mode = CableMode::Heal);
    }

    pub fn mode(&self) -> CableMode {
        self.state.lock().unwrap().mode
    }

    /// Delivers `bytes` to side `to` (its reader gets them), behind what is
    /// already queued for it.
    pub fn inject(&self, to: Side, bytes: &[u8]) {
        self.set(|s| s.inject[to.index()].extend_from_slice(bytes));
    }

    /// The delivered chunks written by side `from`, each with its time since
    /// the cable was created.
    pub fn chunks(&self, from: Side) -> Vec<(Duration, Vec<u8>)> {
        self.state.lock().unwrap().capture[from.index()].clone()
    }

    /// Every byte written by side `from` and delivered so far (injected
    /// bytes towards the other side included).
    pub fn captured(&self, from: Side) -> Vec<u8> {
        self.state.lock().unwrap().capture[from.index()]
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    pub fn stats(&self) -> CableStats {
        self.state.lock().unwrap().stats
    }
}

impl Drop for SerialCable {
    fn drop(&mut self) {
        self.set(|s| s.stop = true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for l in &self.links {
            let _ = std::fs::remove_file(l);
        }
    }
}

struct Relay {
    masters: [OwnedFd; 2],
    /// Held open so that the ptys never hang up while nodes come and go.
    _slaves: [OwnedFd; 2],
    wake: OwnedFd,
    state: Arc<Mutex<State>>,
    /// Bytes per second per direction, None = unthrottled.
    bps: Option<f64>,
    /// Direction i: bytes written on side i, waiting for the other side.
    queues: [VecDeque<u8>; 2],
    /// When the (virtual) line of direction i is free again.
    free_at: [Instant; 2],
    /// Since when the receiver of direction i has taken nothing.
    full_since: [Option<Instant>; 2],
    start: Instant,
}

impl Relay {
    fn run(mut self) {
        // SAFETY: sched_setscheduler(0, ...) on the calling thread with a
        // parameter we own. Failure just leaves the thread as it is.
        unsafe {
            let p = libc::sched_param { sched_priority: 2 };
            libc::sched_setscheduler(0, libc::SCHED_RR, &p);
        }
        let mut buf = vec![0u8; 65536];
        loop {
            let (mode, injected) = {
                let mut s = self.state.lock().unwrap();
                if s.stop {
                    break;
                }
                let inj = [
                    std::mem::take(&mut s.inject[0]),
                    std::mem::take(&mut s.inject[1]),
                ];
                (s.mode, inj)
            };
            let now = Instant::now();
            for (to, bytes) in injected.iter().enumerate() {
                if !bytes.is_empty() {
                    self.enqueue(1 - to, bytes, now);
                }
            }
            let busy = self.queues.iter().any(|q| !q.is_empty());
            let readable: Vec<usize> = (0..2)
                .filter(|&d| match mode {
                    CableMode::Block => false,
                    CableMode::Cut => true,
                    CableMode::Heal => self.queues[d].len() < QUEUE_LIMIT,
                })
                .collect();
            let mut fds = vec![PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
            for &d in &readable {
                fds.push(PollFd::new(self.masters[d].as_fd(), PollFlags::POLLIN));
            }
            let timeout = PollTimeout::from(if busy { 2u16 } else { 200u16 });
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => panic!("serialwire: poll: {e}"),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| {
                    f.revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
                })
                .collect();
            drop(fds);
            if ready[0] {
                while nix::unistd::read(&self.wake, &mut buf).is_ok_and(|n| n > 0) {}
            }
            // The mode may have changed while we slept (a heal wakes us up
            // together with the bytes written after it): judge what was read
            // by the mode now, not by the one polled with.
            let mode = self.state.lock().unwrap().mode;
            let now = Instant::now();
            for (i, &d) in readable.iter().enumerate() {
                if !ready[i + 1] || mode == CableMode::Block {
                    continue;
                }
                let n = nix::unistd::read(&self.masters[d], &mut buf).unwrap_or_default();
                if n == 0 {
                    continue;
                }
                if mode == CableMode::Cut {
                    self.state.lock().unwrap().stats.discarded[d] += n;
                } else {
                    self.enqueue(d, &buf[..n], now);
                }
            }
            if mode == CableMode::Cut {
                for d in 0..2 {
                    let n = self.queues[d].len();
                    if n > 0 {
                        self.queues[d].clear();
                        self.state.lock().unwrap().stats.discarded[d] += n;
                    }
                }
            }
            for d in 0..2 {
                self.deliver(d, Instant::now());
            }
        }
    }

    fn enqueue(&mut self, d: usize, bytes: &[u8], now: Instant) {
        if self.queues[d].is_empty() && self.free_at[d] < now {
            self.free_at[d] = now;
        }
        self.queues[d].extend(bytes);
    }

    /// Writes what the line of direction `d` has carried by `now` to the
    /// other side's master.
    fn deliver(&mut self, d: usize, now: Instant) {
        if self.queues[d].is_empty() {
            return;
        }
        let n = match self.bps {
            None => self.queues[d].len(),
            Some(bps) => {
                // A relay that was descheduled does not catch up in one burst.
                let floor = now.checked_sub(Duration::from_millis(50)).unwrap_or(now);
                if self.free_at[d] < floor {
                    self.free_at[d] = floor;
                }
                let secs = now.saturating_duration_since(self.free_at[d]).as_secs_f64();
                ((secs * bps) as usize).min(self.queues[d].len())
            }
        };
        if n == 0 {
            return;
        }
        let chunk: Vec<u8> = self.queues[d].iter().take(n).copied().collect();
        let written = nix::unistd::write(&self.masters[1 - d], &chunk).unwrap_or(0);
        self.queues[d].drain(..written);
        if let Some(bps) = self.bps {
            self.free_at[d] += Duration::from_secs_f64(written as f64 / bps);
        }
        let mut lost = 0;
        if written > 0 {
            self.full_since[d] = None;
        } else {
            // The receiver takes nothing. A slow reader gets everything;
            // one that has not read for a while (a stopped node) loses the
            // bytes, like a UART receiver overrun, instead of holding the
            // sender back.
            let since = *self.full_since[d].get_or_insert(now);
            if now.saturating_duration_since(since) >= OVERRUN_AFTER {
                lost = self.queues[d].len();
                self.queues[d].clear();
            }
        }
        let mut s = self.state.lock().unwrap();
        s.stats.delivered[d] += written;
        s.stats.overrun[d] += lost;
        if written > 0 && s.captured[d] + written <= CAPTURE_LIMIT {
            s.captured[d] += written;
            let at = now.saturating_duration_since(self.start);
            s.capture[d].push((at, chunk[..written].to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &Path) -> OwnedFd {
        nix::fcntl::open(
            p,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    /// Reads from `fd` until `want` bytes came or `secs` passed.
    fn read_n(fd: &OwnedFd, want: usize, secs: u64) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        crate::wait_until(Duration::from_secs(secs), || {
            while let Ok(n) = nix::unistd::read(fd, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            (got.len() >= want).then_some(())
        });
        got
    }

    #[test]
    fn relays_every_byte_value_both_ways_and_captures() {
        let dir = tempfile::tempdir().unwrap();
        let cable = SerialCable::new(dir.path(), None);
        assert!(cable.device(Side::A).starts_with("/dev/pts"));
        assert_eq!(
            std::fs::read_link(cable.path(Side::B)).unwrap(),
            cable.device(Side::B)
        );
        let a = open(cable.path(Side::A));
        let b = open(cable.path(Side::B));
        let all: Vec<u8> = (0..=255u8).collect();
        nix::unistd::write(&a, &all).unwrap();
        assert_eq!(read_n(&b, 256, 10), all);
        nix::unistd::write(&b, b"pong\r\n").unwrap();
        assert_eq!(read_n(&a, 6, 10), b"pong\r\n");
        assert_eq!(cable.captured(Side::A), all);
        assert_eq!(cable.captured(Side::B), b"pong\r\n");
        assert_eq!(cable.stats().delivered, [256, 6]);
        // injected noise reaches the side it is meant for
        cable.inject(Side::A, b"noise\n");
        assert_eq!(read_n(&a, 6, 10), b"noise\n");
        let links: Vec<PathBuf> = [Side::A, Side::B]
            .iter()
            .map(|s| cable.path(*s).to_owned())
            .collect();
        drop(cable);
        assert!(links
            .iter()
            .all(|l| !l.exists() && l.symlink_metadata().is_err()));
    }

    #[test]
    fn cut_block_and_heal() {
        let dir = tempfile::tempdir().unwrap();
        let cable = SerialCable::new(dir.path(), None);
        let a = open(cable.path(Side::A));
        let b = open(cable.path(Side::B));
        cable.cut();
        nix::unistd::write(&a, b"lost").unwrap();
        crate::wait_until(Duration::from_secs(10), || {
            (cable.stats().discarded[0] == 4).then_some(())
        })
        .expect("the cut cable swallows the bytes");
        cable.heal();
        nix::unistd::write(&a, b"kept").unwrap();
        assert_eq!(
            read_n(&b, 4, 10),
            b"kept",
            "only what was sent after the heal"
        );
        // Blocked: the writer's buffer fills up, nothing is delivered.
        cable.block();
        std::thread::sleep(Duration::from_millis(50));
        let before = cable.stats().delivered[0];
        let chunk = [b'x'; 1024];
        let mut sent = 0;
        let full = crate::wait_until(Duration::from_secs(10), || {
            match nix::unistd::write(&a, &chunk) {
                Ok(n) => {
                    sent += n;
                    None
                }
                Err(Errno::EAGAIN) => Some(()),
                Err(e) => panic!("{e}"),
            }
        });
        assert!(full.is_some(), "a blocked cable stops taking bytes");
        assert_eq!(cable.stats().delivered[0], before);
        cable.heal();
        assert_eq!(read_n(&b, sent, 20).len(), sent);
    }

    #[test]
    fn a_receiver_that_does_not_read_loses_bytes_instead_of_holding_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let cable = SerialCable::new(dir.path(), None);
        let a = open(cable.path(Side::A));
        // Nobody reads ttyB: far more than its buffers hold still goes out.
        let chunk = [b'z'; 4096];
        for i in 0..64 {
            crate::wait_until(Duration::from_secs(10), || {
                nix::unistd::write(&a, &chunk).ok().filter(|n| *n > 0)
            })
            .unwrap_or_else(|| panic!("the sender is held back at chunk {i}"));
        }
        crate::wait_until(Duration::from_secs(10), || {
            (cable.stats().overrun[0] > 0).then_some(())
        })
        .expect("bytes for the silent side are dropped");
    }

    #[test]
    fn throttled_to_the_baud_rate() {
        let dir = tempfile::tempdir().unwrap();
        let cable = SerialCable::new(dir.path(), Some(9600));
        let a = open(cable.path(Side::A));
        let b = open(cable.path(Side::B));
        let t0 = Instant::now();
        let data = vec![b'U'; 1440];
        nix::unistd::write(&a, &data).unwrap();
        let got = read_n(&b, data.len(), 20);
        assert_eq!(got, data);
        // 960 bytes/s: never more than that rate (plus one 50 ms catch-up
        // allowance) has arrived at any time. The capture times count from
        // the cable's creation, a little before the write, which only makes
        // the bound looser; a lower bound on time, so load cannot fail it.
        let mut total = 0;
        for (at, c) in cable.chunks(Side::A) {
            total += c.len();
            let allowed = (at.as_secs_f64() + 0.05) * 960.0 + 1.0;
            assert!(total as f64 <= allowed, "{total} bytes after {at:?}");
        }
        assert!(t0.elapsed() >= Duration::from_millis(1400));
    }
}
