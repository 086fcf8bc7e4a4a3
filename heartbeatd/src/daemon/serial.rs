//! The `serial` heartbeat medium: heartbeat 3.0.6's null-modem link.
//!
//! `serial /dev/ttyS0` (with `baud N` before it, default 19200) makes a
//! second, independent path between the two nodes of a pair, so that a dead
//! LAN does not split the cluster. What goes over the cable is exactly what
//! 3.0.6 puts on it, so either end may be a real 3.0.6 node:
//!
//! * **Opening** ([`open_port`]): the path as written in ha.cf (it is also
//!   the link name, `cl_status hblinkstatus NODE /dev/ttyS0`) must be
//!   absolute and `stat()` (following symlinks) to a character device on
//!   which `tcgetattr` works; anything else is refused with 3.0.6's reason.
//!   A UUCP lock `/var/lock/LCK..NAME` held by a running process refuses the
//!   port (`cannot lock line`); like 3.0.6, the lock is only held while the
//!   port is being set up. The port is opened `O_RDWR | O_NOCTTY`,
//!   close-on-exec and non-blocking (for the mio loop), then set up as 3.0.6
//!   does ([`configure`]): speed = `baud`, `cs8 -parenb -cstopb cread clocal
//!   crtscts`, input `brkint inpck istrip igncr -ignbrk -icrnl -inlcr -ixon
//!   -ixoff -ixany -parmrk`, `-opost`, `-icanon -echo -isig` (and `-iexten
//!   -echonl`, which a raw port has anyway), `min 1 time 1`; both queues are
//!   flushed and a break is sent.
//! * **Sending**: each message as a classic frame (`>>>` / `NAME=VALUE`
//!   lines / `<<<`, the `auth=` line last and the only authentication; see
//!   [`crate::wire::classic`]), one frame after the other from a write queue
//!   drained whenever the port is writable. Frames longer than 512 bytes go
//!   out in 512-byte fragments with 3.0.6's pause of 512 / (baud / 8) s
//!   between them ([`fragment_delay`]: 213.3 ms at 19200), which a timerfd
//!   times, so the loop never sleeps. Nothing overtakes a fragmented frame
//!   (as in 3.0.6, a big message delays the heartbeats behind it). When
//!   nothing can be written for 500 ms (no CTS, a cable that does not take
//!   bytes) the port's output queue is flushed and everything waiting is
//!   dropped, as 3.0.6 does on its write timeout; the warning `TTY write
//!   timeout on [DEV] (no connection or bad cable?)` is reported at most once
//!   an hour. (3.0.6 also throws away the *input* queue there; we keep it.)
//! * **Receiving** ([`Framer`], sans-IO): 3.0.6's reader. Bytes have bit 7
//!   cleared and CR dropped (the port does that too: `istrip igncr`), are
//!   cut into lines at `\n` (a line longer than 256 KiB is cut there), lines
//!   are skipped until one *starting* with `>>>`, and the frame ends at the
//!   first line starting with `<<<`. Garbage between frames is ignored;
//!   garbage glued to a start line, or a truncated frame, costs that frame
//!   (and the frame it runs into), after which the next `>>>` line resyncs;
//!   a frame growing past 256 KiB (MAXMSG) is dropped. [`decode_frame`] then
//!   parses strictly (start line exactly `>>>`, end line exactly `<<<`,
//!   every other non-empty line `NAME=VALUE`, no field named `>>>…`) and
//!   verifies the `auth=` line with the key index it names.
//! * **No ring forwarding**: frames are never relayed to another port
//!   (3.0.6 never does; every node must be cabled to each node it needs to
//!   hear). `ttl` is sent as the core builds it and ignored on receipt.
//! * **Hang-ups**: a tty that reports end-of-file or EIO (a pty whose other
//!   side went away; a real port with `clocal` never does) closes the port
//!   and reopens the same path every second, quietly — unlike 3.0.6, which
//!   logs `EOF in ttygets` in a tight loop and never recovers.
//!
//! Problems found while writing or reopening in the background are reported
//! through the next [`Medium::send`] error, which the daemon logs (rate
//! limited) and counts as a send error of this medium.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::termios::{
    self, BaudRate, ControlFlags, FlushArg, InputFlags, LocalFlags, OutputFlags, SetArg,
    SpecialCharacterIndices, Termios,
};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::media::{Medium, Received};
use crate::auth::Keyring;
use crate::wire::{self, Message, WireError, MAX_MSG};

/// 3.0.6 writes frames in pieces of this size (FRAGSIZE).
pub const FRAGMENT: usize = 512;
/// A write that cannot make progress for this long is given up (3.0.6's
/// 500 ms alarm around each `write()`).
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
/// Bytes the write queue may hold; a message that does not fit is dropped.
pub const MAX_QUEUED: usize = 2 * MAX_MSG;
/// How often a hung-up port is reopened.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// The write-timeout warning is reported at most this often (RTS_WARNTIME).
const TIMEOUT_REPORT_INTERVAL: Duration = Duration::from_secs(3600);
/// Bytes read per event at most; more waiting is read on the next round of
/// the loop (a port that never stops talking cannot starve the daemon).
pub const READ_BUDGET: usize = 64 * 1024;
/// Where UUCP lock files live.
pub const LOCK_DIR: &str = "/var/lock";

/// The rates `baud` accepts, as 3.0.6.
pub const BAUD_RATES: [u32; 7] = [9600, 19200, 38400, 57600, 115200, 230400, 460800];

/// 3.0.6's pause between two fragments of a frame: 512 / (baud / 8)
/// seconds, in whole microseconds (`usleep` of `(1.0*512)/(baud/8)*1000000`
/// with the integer `baud/8`): 213 333 µs at 19200.
pub fn fragment_delay(baud: u32) -> Duration {
    let bytes_per_s = u64::from((baud / 8).max(1));
    Duration::from_micros(FRAGMENT as u64 * 1_000_000 / bytes_per_s)
}

fn baud_rate(baud: u32) -> Option<BaudRate> {
    Some(match baud {
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115200 => BaudRate::B115200,
        230400 => BaudRate::B230400,
        460800 => BaudRate::B460800,
        _ => return None,
    })
}

// ------------------------------------------------------------------------
// Receiving: the framer (sans-IO)
// ------------------------------------------------------------------------

/// 3.0.6's serial reader as a byte-stream state machine: bytes in (as read
/// from the port, or as they were on the cable), complete frames out.
///
/// Each output item is a frame's text from its `>>>` line to its `<<<` line
/// inclusive (bit 7 cleared, CR dropped, every line ending in `\n`), or
/// [`WireError::TooLarge`] for a frame dropped because it grew past MAXMSG.
/// Lines skipped while hunting for a start line produce nothing. Any split
/// of the same stream into `push` calls gives the same output.
#[derive(Debug, Default)]
pub struct Framer {
    line: Vec<u8>,
    frame: Option<Vec<u8>>,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Feeds bytes; complete frames (or dropped oversized ones) are
    /// appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Result<Vec<u8>, WireError>>) {
        for &raw in bytes {
            let b = raw & 0x7f; // ISTRIP (before IGNCR, as the tty does)
            match b {
                b'\r' => {} // IGNCR
                b'\n' => self.end_line(out),
                _ => {
                    self.line.push(b);
                    // 3.0.6 reads lines into a MAXMSG buffer: a longer one
                    // comes out in MAXMSG-sized pieces.
                    if self.line.len() >= MAX_MSG {
                        self.end_line(out);
                    }
                }
            }
        }
    }

    /// True while a frame has started but not ended.
    pub fn in_frame(&self) -> bool {
        self.frame.is_some()
    }

    /// Forgets any partial line and frame (after the port was reopened).
    pub fn reset(&mut self) {
        self.line.clear();
        self.frame = None;
    }

    fn end_line(&mut self, out: &mut Vec<Result<Vec<u8>, WireError>>) {
        let mut line = std::mem::take(&mut self.line);
        // The C reader handles lines as strings: a NUL ends them.
        if let Some(p) = line.iter().position(|b| *b == 0) {
            line.truncate(p);
        }
        match self.frame.take() {
            None => {
                if line.starts_with(b">>>") {
                    let mut f = Vec::with_capacity(256);
                    f.extend_from_slice(&line);
                    f.push(b'\n');
                    if f.len() >= MAX_MSG {
                        out.push(Err(WireError::TooLarge(f.len())));
                    } else {
                        self.frame = Some(f);
                    }
                }
            }
            Some(mut f) => {
                f.extend_from_slice(&line);
                f.push(b'\n');
                if line.starts_with(b"<<<") {
                    // (+1: 3.0.6 counts the terminating NUL too)
                    if f.len() + 1 >= MAX_MSG {
                        out.push(Err(WireError::TooLarge(f.len())));
                    } else {
                        out.push(Ok(f));
                    }
                } else if f.len() >= MAX_MSG {
                    // Dropped at once; the rest of it is skipped as noise.
                    out.push(Err(WireError::TooLarge(f.len())));
                } else {
                    self.frame = Some(f);
                }
            }
        }
        line.clear();
        self.line = line;
    }
}

/// Parses a frame from the [`Framer`] strictly, as 3.0.6 does, and verifies
/// its `auth=` line. The message keeps its `auth` field.
pub fn decode_frame(frame: &[u8], keys: &Keyring) -> Result<Message, WireError> {
    if !frame.starts_with(wire::classic::START) {
        return Err(WireError::Malformed(
            "the start line is not exactly \">>>\"".into(),
        ));
    }
    if frame[wire::classic::START.len()..]
        .split(|b| *b == b'\n')
        .any(|l| l.starts_with(b">>>"))
    {
        return Err(WireError::Malformed(
            "illegal field: a line starting with \">>>\" inside a frame (a truncated frame \
             ran into the next one)"
                .into(),
        ));
    }
    wire::decode_verified(frame, keys)
}

// ------------------------------------------------------------------------
// Sending: the write queue (sans-IO)
// ------------------------------------------------------------------------

/// What the write queue wants next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// Write (a part of) these bytes now.
    Write(&'a [u8]),
    /// The next fragment may not start before this time.
    Wait(Instant),
    /// Nothing to write.
    Idle,
}

/// The frames waiting for the port, written in 512-byte fragments with
/// 3.0.6's pause between the fragments of one frame, FIFO. It also keeps
/// track of how long the port has refused bytes (the write timeout).
#[derive(Debug)]
pub struct WriteQueue {
    frames: VecDeque<Vec<u8>>,
    /// Bytes not yet written, over all frames.
    queued: usize,
    /// Bytes of the front frame already written.
    pos: usize,
    /// End of the fragment being written in the front frame (== pos when
    /// no fragment is under way).
    chunk_end: usize,
    /// The next fragment of the front frame may not start before this.
    not_before: Option<Instant>,
    pace: Duration,
    /// Since when the port has refused bytes we had to write.
    stalled_since: Option<Instant>,
}

impl WriteQueue {
    /// A queue pacing fragments by `pace` ([`fragment_delay`] of the baud).
    pub fn new(pace: Duration) -> WriteQueue {
        WriteQueue {
            frames: VecDeque::new(),
            queued: 0,
            pos: 0,
            chunk_end: 0,
            not_before: None,
            pace,
            stalled_since: None,
        }
    }

    /// Queues a frame; false (and nothing queued) if it would make the
    /// queue exceed [`MAX_QUEUED`] bytes.
    pub fn push(&mut self, frame: Vec<u8>) -> bool {
        if frame.is_empty() {
            return true;
        }
        if self.queued + frame.len() > MAX_QUEUED {
            return false;
        }
        self.queued += frame.len();
        self.frames.push_back(frame);
        true
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Instant) -> Next<'_> {
        loop {
            let Some(front) = self.frames.front() else {
                return Next::Idle;
            };
            if self.pos == front.len() {
                // A frame is complete: the next one starts at once (3.0.6
                // pauses only between the fragments of one frame).
                self.frames.pop_front();
                self.pos = 0;
                self.chunk_end = 0;
                self.not_before = None;
                continue;
            }
            if self.pos < self.chunk_end {
                let f = self.frames.front().expect("checked above");
                return Next::Write(&f[self.pos..self.chunk_end]);
            }
            if let Some(t) = self.not_before {
                if now < t {
                    return Next::Wait(t);
                }
                self.not_before = None;
            }
            self.chunk_end = (self.pos + FRAGMENT).min(front.len());
        }
    }

    /// `n` bytes of what [`WriteQueue::next`] returned were written at `now`.
    pub fn wrote(&mut self, now: Instant, n: usize) {
        if n == 0 {
            return;
        }
        debug_assert!(self.pos + n <= self.chunk_end);
        self.pos += n;
        self.queued -= n;
        self.stalled_since = None;
        let len = self.frames.front().map_or(0, Vec::len);
        if self.pos == self.chunk_end && self.pos < len {
            self.not_before = Some(now + self.pace);
        }
    }

    /// The port refused bytes at `now` (EAGAIN).
    pub fn blocked(&mut self, now: Instant) {
        if self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
    }

    /// True once the port has refused bytes for [`WRITE_TIMEOUT`].
    pub fn timed_out(&self, now: Instant) -> bool {
        self.stalled_since
            .is_some_and(|s| now.saturating_duration_since(s) >= WRITE_TIMEOUT)
    }

    /// When the queue needs attention without an event from the port: the
    /// next fragment's start, or the write timeout.
    pub fn deadline(&self) -> Option<Instant> {
        let timeout = self.stalled_since.map(|s| s + WRITE_TIMEOUT);
        let pace = if self.frames.is_empty() || self.pos < self.chunk_end {
            None
        } else {
            self.not_before
        };
        match (timeout, pace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops the rest of the front frame (a write error); returns how many
    /// bytes were dropped.
    pub fn drop_front(&mut self) -> usize {
        let Some(f) = self.frames.pop_front() else {
            return 0;
        };
        let n = f.len() - self.pos;
        self.queued -= n;
        self.pos = 0;
        self.chunk_end = 0;
        self.not_before = None;
        self.stalled_since = None;
        n
    }

    /// Drops everything; returns how many bytes were dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.queued;
        self.frames.clear();
        self.queued = 0;
        self.pos = 0;
        self.chunk_end = 0;
        self.not_before = None;
        self.stalled_since = None;
        n
    }
}

// ------------------------------------------------------------------------
// Opening the port
// ------------------------------------------------------------------------

/// Applies 3.0.6's port settings to `t` (see the module doc).
pub fn configure(t: &mut Termios, speed: BaudRate) -> nix::Result<()> {
    t.input_flags.remove(
        InputFlags::IGNBRK
            | InputFlags::IUCLC
            | InputFlags::IXANY
            | InputFlags::IXOFF
            | InputFlags::IXON
            | InputFlags::ICRNL
            | InputFlags::INLCR
            | InputFlags::PARMRK,
    );
    t.input_flags
        .insert(InputFlags::INPCK | InputFlags::ISTRIP | InputFlags::IGNCR | InputFlags::BRKINT);
    t.output_flags.remove(OutputFlags::OPOST);
    t.control_flags
        .remove(ControlFlags::CSIZE | ControlFlags::PARENB | ControlFlags::CSTOPB);
    t.control_flags.insert(
        ControlFlags::CS8 | ControlFlags::CREAD | ControlFlags::CLOCAL | ControlFlags::CRTSCTS,
    );
    t.local_flags.remove(
        LocalFlags::ICANON
            | LocalFlags::ECHO
            | LocalFlags::ECHONL
            | LocalFlags::ISIG
            | LocalFlags::IEXTEN,
    );
    t.line_discipline = 0;
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 1;
    termios::cfsetspeed(t, speed)
}

/// The UUCP lock file name of a device: `LCK..` + the letters and digits of
/// the path after its first five characters (`/dev/ttyS0` → `LCK..ttyS0`,
/// `/dev/pts/3` → `LCK..pts3`), as 3.0.6 names it. None when that leaves
/// nothing.
pub fn lock_name(device: &Path) -> Option<String> {
    let raw: String = device
        .as_os_str()
        .as_bytes()
        .iter()
        .skip(5)
        .filter(|b| b.is_ascii_alphanumeric())
        .take(63)
        .map(|b| char::from(*b))
        .collect();
    (!raw.is_empty()).then(|| format!("LCK..{raw}"))
}

/// A UUCP lock on a line, held while the port is set up (and removed
/// afterwards, which is what 3.0.6's lock amounts to).
struct LineLock {
    file: Option<PathBuf>,
}

impl LineLock {
    fn take(device: &Path, dir: &Path) -> Result<LineLock, String> {
        let unlocked = LineLock { file: None };
        let Some(name) = lock_name(device) else {
            return Ok(unlocked);
        };
        if !dir.is_dir() {
            return Ok(unlocked);
        }
        let file = dir.join(name);
        let me = std::process::id() as i32;
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if pid > 0 && pid != me && process_exists(pid) {
                    return Err(format!(
                        "cannot lock line: {} belongs to running process {pid} (another \
                         program uses the port)",
                        file.display()
                    ));
                }
            }
            // Stale (or not a lock at all): take it over.
            let _ = std::fs::remove_file(&file);
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
        {
            Ok(mut f) => {
                let _ = writeln!(f, "{me:>10}");
                Ok(LineLock { file: Some(file) })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(format!(
                "cannot lock line: {} was created by someone else while we locked it",
                file.display()
            )),
            // A lock directory we cannot write: go on without a lock.
            Err(_) => Ok(unlocked),
        }
    }
}

impl Drop for LineLock {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// strerror(3) of `e`, as 3.0.6 prints it.
fn strerror(e: Errno) -> String {
    let s = io::Error::from(e).to_string();
    match s.rfind(" (os error ") {
        Some(p) => s[..p].to_owned(),
        None => s,
    }
}

fn process_exists(pid: i32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == Errno::EPERM,
    }
}

/// Opens and sets up the serial port `device` as 3.0.6 does (see the
/// module doc), using lock files in `lock_dir`. The error says why, in
/// 3.0.6's words where it has them (without the device name).
pub fn open_port(device: &Path, baud: u32, lock_dir: &Path) -> Result<OwnedFd, String> {
    check_port_path(device)?;
    let speed = baud_rate(baud).ok_or_else(|| {
        format!("invalid baudrate [{baud}] (heartbeat knows 9600, 19200, 38400, 57600, 115200, 230400 and 460800)")
    })?;
    let _lock = LineLock::take(device, lock_dir)?;
    let fd = nix::fcntl::open(
        device,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open the serial port: {}", strerror(e)))?;
    open_port_rest(fd, speed)
}

/// The checks 3.0.6 makes on a `serial` line when it reads ha.cf (a
/// failure is a configuration error there, exit 6): an absolute path to an
/// existing character device.
pub fn check_port_path(device: &Path) -> Result<(), String> {
    if !device.is_absolute() {
        return Err(
            "Serial port not full pathname (give the absolute path of the port, e.g. /dev/ttyS0)"
                .into(),
        );
    }
    let meta = match std::fs::metadata(device) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("Nonexistent serial port ({e})"))
        }
        Err(e) => return Err(format!("cannot stat the serial port: {e}")),
    };
    let ft = meta.file_type();
    if !ft.is_char_device() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_file() {
            "a regular file"
        } else if ft.is_block_device() {
            "a block device"
        } else {
            "not a device"
        };
        return Err(format!(
            "Serial port not a char device (it is {what}; a serial port is a tty such as \
             /dev/ttyS0 or /dev/ttyUSB0)"
        ));
    }
    Ok(())
}

/// Port settings of a freshly opened port (the rest of [`open_port`]).
fn open_port_rest(fd: OwnedFd, speed: BaudRate) -> Result<OwnedFd, String> {
    let mut t = termios::tcgetattr(&fd).map_err(|e| {
        format!(
            "cannot get tty attributes: {} (not a terminal; a serial port is a tty such as \
             /dev/ttyS0 or /dev/ttyUSB0)",
            strerror(e)
        )
    })?;
    configure(&mut t, speed).map_err(|e| format!("cannot set the speed: {}", strerror(e)))?;
    termios::tcsetattr(&fd, SetArg::TCSANOW, &t)
        .map_err(|e| format!("cannot set tty attributes: {}", strerror(e)))?;
    // "For good measure", and to make the other side flush (a no-op on a
    // pty; 0.25-0.5 s on a real port).
    let _ = termios::tcflush(&fd, FlushArg::TCIOFLUSH);
    let _ = termios::tcsendbreak(&fd, 0);
    Ok(fd)
}

// ------------------------------------------------------------------------
// The medium
// ------------------------------------------------------------------------

/// A serial port as a heartbeat medium.
pub struct Serial {
    name: String,
    path: PathBuf,
    baud: u32,
    lock_dir: PathBuf,
    port: Option<OwnedFd>,
    timer: TimerFd,
    reg: Option<(Registry, Token)>,
    framer: Framer,
    queue: WriteQueue,
    reopen_at: Option<Instant>,
    /// Something to tell through the next `send` error.
    report: Option<String>,
    timeout_reported: Option<Instant>,
    /// The read budget ran out with bytes possibly still waiting.
    more_to_read: bool,
    buf: Vec<u8>,
}

/// How a round of writing ended.
enum WriteEnd {
    Done,
    HangUp(Errno),
    Failed(Errno),
}

impl Serial {
    /// Opens `device` (the path as written in ha.cf) at `baud`.
    pub fn open(device: &Path, baud: u32) -> Result<Serial, String> {
        Serial::open_with_lock_dir(device, baud, Path::new(LOCK_DIR))
    }

    /// [`Serial::open`] with lock files in `lock_dir`.
    pub fn open_with_lock_dir(device: &Path, baud: u32, lock_dir: &Path) -> Result<Serial, String> {
        let port = open_port(device, baud, lock_dir)?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| format!("timerfd: {}", strerror(e)))?;
        Ok(Serial {
            name: device.display().to_string(),
            path: device.to_path_buf(),
            baud,
            lock_dir: lock_dir.to_path_buf(),
            port: Some(port),
            timer,
            reg: None,
            framer: Framer::new(),
            queue: WriteQueue::new(fragment_delay(baud)),
            reopen_at: None,
            report: None,
            timeout_reported: None,
            more_to_read: false,
            buf: vec![0; 16384],
        })
    }

    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// False between a hang-up and the successful reopen.
    pub fn is_open(&self) -> bool {
        self.port.is_some()
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queue.queued()
    }

    fn register_port(&self) -> io::Result<()> {
        if let (Some(fd), Some((reg, token))) = (&self.port, &self.reg) {
            reg.register(
                &mut SourceFd(&fd.as_raw_fd()),
                *token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        Ok(())
    }

    fn hang_up(&mut self, now: Instant, why: &str) {
        if let Some(fd) = self.port.take() {
            if let Some((reg, _)) = &self.reg {
                let _ = reg.deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
        }
        self.framer.reset();
        let dropped = self.queue.clear();
        self.reopen_at = Some(now + REOPEN_INTERVAL);
        self.report = Some(format!(
            "{why} on [{}]: the port is closed and reopened every {} s until that works \
             ({dropped} queued bytes dropped)",
            self.name,
            REOPEN_INTERVAL.as_secs()
        ));
    }

    fn try_reopen(&mut self, now: Instant) {
        match open_port(&self.path, self.baud, &self.lock_dir) {
            Ok(fd) => {
                self.port = Some(fd);
                self.reopen_at = None;
                if let Err(e) = self.register_port() {
                    self.hang_up(now, &format!("cannot watch the reopened port ({e})"));
                }
            }
            Err(e) => {
                self.reopen_at = Some(now + REOPEN_INTERVAL);
                self.report = Some(format!("cannot reopen [{}]: {e}", self.name));
            }
        }
    }

    /// Writes what the queue allows now.
    fn pump(&mut self, now: Instant) {
        let Some(fd) = self.port.as_ref() else {
            return;
        };
        let end = loop {
            let bytes = match self.queue.next(now) {
                Next::Write(b) => b,
                Next::Wait(_) | Next::Idle => break WriteEnd::Done,
            };
            match nix::unistd::write(fd, bytes) {
                Ok(0) | Err(Errno::EAGAIN) => {
                    self.queue.blocked(now);
                    break WriteEnd::Done;
                }
                Ok(n) => self.queue.wrote(now, n),
                Err(Errno::EINTR) => {}
                Err(e @ (Errno::EIO | Errno::ENXIO | Errno::EBADF)) => break WriteEnd::HangUp(e),
                Err(e) => break WriteEnd::Failed(e),
            }
        };
        match end {
            WriteEnd::Done => {}
            WriteEnd::HangUp(e) => {
                self.hang_up(now, &format!("TTY write failure ({})", strerror(e)));
                return;
            }
            WriteEnd::Failed(e) => {
                let n = self.queue.drop_front();
                self.report = Some(format!(
                    "TTY write failure on [{}]: {} ({n} bytes of a frame dropped)",
                    self.name,
                    strerror(e)
                ));
            }
        }
        if self.queue.timed_out(now) {
            if let Some(fd) = self.port.as_ref() {
                let _ = termios::tcflush(fd, FlushArg::TCOFLUSH);
            }
            let n = self.queue.clear();
            let due = self
                .timeout_reported
                .is_none_or(|t| now.saturating_duration_since(t) >= TIMEOUT_REPORT_INTERVAL);
            if due {
                self.timeout_reported = Some(now);
                self.report = Some(format!(
                    "TTY write timeout on [{}] (no connection or bad cable? the port took \
                     nothing for {} ms; {n} queued bytes dropped; reported once an hour)",
                    self.name,
                    WRITE_TIMEOUT.as_millis()
                ));
            }
        }
    }

    /// Sets the timer to the next moment something must happen without an
    /// event from the port.
    fn arm_timer(&mut self, now: Instant) {
        let due = if self.port.is_none() {
            self.reopen_at
        } else if self.more_to_read {
            Some(now)
        } else {
            self.queue.deadline()
        };
        let res = match due {
            Some(t) => {
                let d = t
                    .saturating_duration_since(now)
                    .max(Duration::from_micros(1));
                self.timer.set(
                    Expiration::OneShot(TimeSpec::from_duration(d)),
                    TimerSetTimeFlags::empty(),
                )
            }
            None => self.timer.unset(),
        };
        if let Err(e) = res {
            self.report = Some(format!("timerfd: {}", strerror(e)));
        }
    }

    fn drain_timer(&self) {
        let mut b = [0u8; 8];
        let _ = nix::unistd::read(&self.timer, &mut b);
    }
}

impl Medium for Serial {
    fn link_name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        format!("serial {}", self.name)
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.reg = Some((registry.try_clone()?, token));
        registry.register(
            &mut SourceFd(&self.timer.as_fd().as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        self.register_port()
    }

    fn send(&mut self, msg: &Message, keys: &Keyring) -> io::Result<()> {
        let now = Instant::now();
        if self.port.is_none() {
            let why = self.report.take().unwrap_or_else(|| {
                format!(
                    "[{}] is closed after a hang-up; reopening every {} s",
                    self.name,
                    REOPEN_INTERVAL.as_secs()
                )
            });
            return Err(io::Error::other(why));
        }
        let accepted = self.queue.push(msg.encode_classic(keys));
        self.pump(now);
        self.arm_timer(now);
        if let Some(r) = self.report.take() {
            return Err(io::Error::other(r));
        }
        if !accepted {
            return Err(io::Error::other(format!(
                "write queue of [{}] full ({} bytes waiting): message dropped",
                self.name,
                self.queue.queued()
            )));
        }
        Ok(())
    }

    fn recv(&mut self, keys: &Keyring, out: &mut Vec<Received>) {
        self.drain_timer();
        let now = Instant::now();
        if self.port.is_none() && self.reopen_at.is_some_and(|t| now >= t) {
            self.try_reopen(now);
        }
        let mut frames = Vec::new();
        let mut hung_up = None;
        self.more_to_read = false;
        if let Some(fd) = self.port.as_ref() {
            let mut budget = READ_BUDGET;
            loop {
                if budget == 0 {
                    self.more_to_read = true;
                    break;
                }
                let room = self.buf.len().min(budget);
                match nix::unistd::read(fd, &mut self.buf[..room]) {
                    Ok(0) => {
                        hung_up = Some("EOF (hang-up) while reading".to_owned());
                        break;
                    }
                    Ok(n) => {
                        budget -= n;
                        self.framer.push(&self.buf[..n], &mut frames);
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        hung_up = Some(format!("read error ({})", strerror(e)));
                        break;
                    }
                }
            }
        }
        if let Some(why) = hung_up {
            self.hang_up(now, &why);
        }
        self.pump(now);
        self.arm_timer(now);
        for f in frames {
            out.push(Received {
                result: f.and_then(|f| decode_frame(&f, keys)),
                from: self.name.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(stream: &[u8]) -> Vec<Result<Vec<u8>, WireError>> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.push(stream, &mut out);
        out
    }

    #[test]
    fn fragment_delay_is_3_0_6s() {
        assert_eq!(fragment_delay(19200), Duration::from_micros(213_333));
        assert_eq!(fragment_delay(9600), Duration::from_micros(426_666));
        assert_eq!(fragment_delay(115200), Duration::from_micros(35_555));
        for b in BAUD_RATES {
            assert!(baud_rate(b).is_some());
        }
        assert!(baud_rate(12345).is_none());
    }

    #[test]
    fn framer_hunts_ends_and_resyncs() {
        let out = frames_of(b"noise\n>>>\nt=a\n<<<\nmore\n>>>\nt=b\n<<<\n");
        let got: Vec<_> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![b">>>\nt=a\n<<<\n".to_vec(), b">>>\nt=b\n<<<\n".to_vec()]
        );
        // glued garbage costs the frame; a truncated one eats the next
        let out = frames_of(b"xyz>>>\nt=a\n<<<\n>>>\nt=p\n>>>\nt=b\n<<<\n");
        let got: Vec<_> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, vec![b">>>\nt=p\n>>>\nt=b\n<<<\n".to_vec()]);
        // bit 7, CR, NUL
        let out = frames_of(b"\xbe\xbe\xbe\r\n\xf4=a\0junk\r\n<<<junk\n");
        assert_eq!(out[0].as_ref().unwrap(), b">>>\nt=a\n<<<junk\n");
    }

    #[test]
    fn framer_bounds_lines_and_frames() {
        // An endless line without newline: cut into MAXMSG pieces, nothing
        // kept beyond that.
        let mut f = Framer::new();
        let mut out = Vec::new();
        let junk = vec![b'x'; MAX_MSG / 2];
        for _ in 0..5 {
            f.push(&junk, &mut out);
            assert!(f.line.len() < MAX_MSG);
        }
        assert!(out.is_empty());
        // A frame that grows past MAXMSG is dropped, then the next one is read.
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.push(b"\n>>>\n", &mut out);
        let line = [vec![b'a'; 1000], b"=x\n".to_vec()].concat();
        for _ in 0..(MAX_MSG / line.len() + 1) {
            f.push(&line, &mut out);
        }
        f.push(b"<<<\n>>>\nt=ok\n<<<\n", &mut out);
        assert!(matches!(out[0], Err(WireError::TooLarge(_))));
        assert_eq!(out[1].as_ref().unwrap(), b">>>\nt=ok\n<<<\n");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn decode_is_strict() {
        let keys = Keyring::single(1, crate::auth::AuthMethod::Crc);
        let mut m = Message::new("status");
        m.add("src", "alpha");
        let good = m.encode_classic(&keys);
        assert_eq!(
            decode_frame(&good, &keys).unwrap().get("src"),
            Some("alpha")
        );
        let junk_start = [b">>>junk".to_vec(), good[3..].to_vec()].concat();
        assert!(matches!(
            decode_frame(&junk_start, &keys),
            Err(WireError::Malformed(_))
        ));
        let inner = [b">>>\n>>>x=1\n".to_vec(), good[4..].to_vec()].concat();
        assert!(decode_frame(&inner, &keys).is_err());
        let mut junk_end = good[..good.len() - 1].to_vec();
        junk_end.extend_from_slice(b"junk\n");
        assert!(decode_frame(&junk_end, &keys).is_err());
        let unsigned = b">>>\nt=status\nsrc=alpha\n<<<\n";
        assert!(matches!(
            decode_frame(unsigned, &keys),
            Err(WireError::Auth(_))
        ));
    }

    #[test]
    fn write_queue_fragments_and_paces() {
        let t0 = Instant::now();
        let pace = fragment_delay(19200);
        let mut q = WriteQueue::new(pace);
        assert!(q.push(vec![b'a'; 1100]));
        assert!(q.push(vec![b'b'; 100]));
        assert_eq!(q.queued(), 1200);
        // first fragment: 512 bytes, written in two goes
        assert_eq!(q.next(t0), Next::Write(&[b'a'; 512][..]));
        q.wrote(t0, 200);
        assert_eq!(q.next(t0), Next::Write(&[b'a'; 312][..]));
        q.wrote(t0, 312);
        // then a pause, also reported as the deadline
        assert_eq!(q.next(t0), Next::Wait(t0 + pace));
        assert_eq!(q.deadline(), Some(t0 + pace));
        let t1 = t0 + pace;
        assert_eq!(q.next(t1), Next::Write(&[b'a'; 512][..]));
        q.wrote(t1, 512);
        assert_eq!(q.next(t1 + pace / 2), Next::Wait(t1 + pace));
        let t2 = t1 + pace;
        assert_eq!(q.next(t2), Next::Write(&[b'a'; 76][..]));
        q.wrote(t2, 76);
        // the next frame follows at once
        assert_eq!(q.next(t2), Next::Write(&[b'b'; 100][..]));
        q.wrote(t2, 100);
        assert_eq!(q.next(t2), Next::Idle);
        assert_eq!(q.queued(), 0);
        assert_eq!(q.deadline(), None);
    }

    #[test]
    fn write_queue_times_out_and_bounds() {
        let t0 = Instant::now();
        let mut q = WriteQueue::new(fragment_delay(19200));
        assert!(q.push(vec![1; 300]));
        assert!(matches!(q.next(t0), Next::Write(_)));
        q.blocked(t0);
        assert_eq!(q.deadline(), Some(t0 + WRITE_TIMEOUT));
        q.blocked(t0 + WRITE_TIMEOUT / 2);
        assert!(!q.timed_out(t0 + WRITE_TIMEOUT / 2));
        assert!(q.timed_out(t0 + WRITE_TIMEOUT));
        // progress resets the stall
        q.wrote(t0 + WRITE_TIMEOUT, 10);
        assert!(!q.timed_out(t0 + WRITE_TIMEOUT * 3));
        assert_eq!(q.clear(), 290);
        assert!(q.is_empty());
        // the queue is bounded
        assert!(q.push(vec![0; MAX_QUEUED - 10]));
        assert!(!q.push(vec![0; 11]));
        assert!(q.push(vec![0; 10]));
        assert_eq!(q.drop_front(), MAX_QUEUED - 10);
        assert_eq!(q.queued(), 10);
    }

    #[test]
    fn lock_names_and_locking() {
        assert_eq!(lock_name(Path::new("/dev/ttyS0")).unwrap(), "LCK..ttyS0");
        assert_eq!(lock_name(Path::new("/dev/pts/0")).unwrap(), "LCK..pts0");
        assert_eq!(lock_name(Path::new("/tmp/x/ttyA")).unwrap(), "LCK..xttyA");
        assert_eq!(lock_name(Path::new("/dev/")), None);
        let dir = tempfile::tempdir().unwrap();
        let dev = Path::new("/dev/ttyQ9");
        let lf = dir.path().join("LCK..ttyQ9");
        {
            let _l = LineLock::take(dev, dir.path()).unwrap();
            let text = std::fs::read_to_string(&lf).unwrap();
            assert_eq!(text, format!("{:>10}\n", std::process::id()));
        }
        assert!(!lf.exists(), "released");
        // held by a live process (pid 1): refused
        std::fs::write(&lf, "         1\n").unwrap();
        let e = LineLock::take(dev, dir.path()).err().unwrap();
        assert!(
            e.contains("cannot lock line") && e.contains("process 1"),
            "{e}"
        );
        // stale (no such process): taken over
        std::fs::write(&lf, format!("{:>10}\n", i32::MAX)).unwrap();
        drop(LineLock::take(dev, dir.path()).unwrap());
        assert!(!lf.exists());
        // no lock directory: no lock
        assert!(LineLock::take(dev, &dir.path().join("none")).is_ok());
    }
}
