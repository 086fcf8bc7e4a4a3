//! The local control socket: how `cl_status`, `hb_standby` and
//! `hb_takeover` talk to the running daemon.
//!
//! A Unix stream socket (`RUN/heartbeat/heartbeatd.sock`, mode 0660, group
//! `haclient`); the daemon also checks the caller's credentials
//! (SO_PEERCRED): root or a member of `haclient` only. One JSON request line
//! in, one JSON response line out, then the connection closes.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The socket path for a run directory.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join("heartbeat").join("heartbeatd.sock")
}

/// Where the CLIs look for the socket: `$HEARTBEATD_SOCKET`, else the
/// default under /run.
pub fn default_socket() -> PathBuf {
    std::env::var_os("HEARTBEATD_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| socket_path(Path::new("/run")))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Status,
    Standby { which: String },
    Takeover { which: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Snapshot>,
}

/// Everything `cl_status` can show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub node: String,
    pub version: String,
    pub pid: u32,
    pub generation: u64,
    pub uuid: String,
    pub local_status: String,
    /// `all`, `local`, `foreign`, `none` or `transition`.
    pub rscstatus: String,
    pub shutting_down: bool,
    pub nodes: Vec<NodeInfo>,
    pub groups: Vec<GroupInfo>,
    pub jobs: Vec<String>,
    pub media: Vec<MediumInfo>,
    /// `cl_status hbparameter -p NAME` values (keepalive, deadtime, ...).
    pub parameters: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub status: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub links: Vec<LinkInfo>,
    pub last_heard_ms: Option<u64>,
    pub deadtime_ms: u64,
    pub generation: u64,
    pub heartbeatd: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub name: String,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub key: String,
    pub home: String,
    pub running_here: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediumInfo {
    pub name: String,
    pub description: String,
    pub sent: u64,
    pub received: u64,
    pub bad: u64,
    pub send_errors: u64,
}

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("heartbeatd is not running (no control socket at {0})")]
    NotRunning(PathBuf),
    #[error("permission denied on {0}: only root and group haclient may use it")]
    Denied(PathBuf),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("bad answer from heartbeatd: {0}")]
    Protocol(String),
}

/// Sends one request and returns the answer.
pub fn request(socket: &Path, req: &Request) -> Result<Response, ClientError> {
    let mut s = UnixStream::connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning(socket.to_path_buf())
        }
        io::ErrorKind::PermissionDenied => ClientError::Denied(socket.to_path_buf()),
        _ => ClientError::Io(e),
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_string(req).expect("request serializes");
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(ClientError::Denied(socket.to_path_buf()));
    }
    serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))
}
