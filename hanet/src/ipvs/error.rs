//! Errors of the IPVS layer.
//!
//! Kernel refusals keep their errno and are worded like ipvsadm's
//! (`libipvs`'s `ipvs_strerror`), so an admin reading our logs sees the
//! familiar "Service already exists" / "No such destination". Backends that
//! are not the kernel (memory, file) return the same errno values for the
//! same situations.

use super::table::Op;

/// What kind of refusal an errno means for an IPVS operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// EEXIST: the service or destination already exists
    AlreadyExists,
    /// ESRCH: no such service
    NoSuchService,
    /// ENOENT on a destination: no such destination
    NoSuchDest,
    /// ENOENT on a service add/edit: scheduler or persistence engine not in the kernel
    SchedulerNotFound,
    /// ERANGE / EINVAL: the kernel refused the values
    InvalidValue,
    /// EPERM: not root
    PermissionDenied,
    /// anything else
    Other,
}

/// An IPVS operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The running kernel has no IPVS.
    #[error("IPVS not available in this kernel (generic netlink family IPVS not found)")]
    NotAvailable,
    /// The kernel (or a backend acting like it) refused operation `index`
    /// of a batch; the operations before it were applied, the ones after it were not.
    #[error("{op}: {}", errno_text(.op, *.errno))]
    Refused {
        /// position of the failed operation in the batch given to `apply`
        index: usize,
        /// the operation
        op: Box<Op>,
        /// the (positive) errno
        errno: i32,
    },
    /// A non-batch request (flush, zero, get) failed with an errno.
    #[error("{what}: {}", std::io::Error::from_raw_os_error(*.errno))]
    Errno {
        /// what was asked
        what: String,
        /// the (positive) errno
        errno: i32,
    },
    /// A value we refuse before talking to the kernel.
    #[error("{0}")]
    Invalid(String),
    /// A reply we could not decode.
    #[error("cannot decode IPVS netlink reply: {0}")]
    Decode(String),
    /// Socket-level failure.
    #[error("IPVS netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The file backend's table file is unreadable or corrupt.
    #[error("{path}: {msg}")]
    File {
        /// the table file
        path: String,
        /// what is wrong
        msg: String,
    },
}

impl IpvsError {
    /// The errno of a kernel refusal, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Refused { errno, .. } | IpvsError::Errno { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Classifies a kernel refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IpvsError::Refused { op, errno, .. } => classify(Some(op), *errno),
            IpvsError::Errno { errno, .. } => classify(None, *errno),
            IpvsError::Invalid(_) => ErrorKind::InvalidValue,
            _ => ErrorKind::Other,
        }
    }

    /// True for EEXIST ("already exists").
    pub fn is_exists(&self) -> bool {
        self.kind() == ErrorKind::AlreadyExists
    }

    /// True for "no such service" or "no such destination".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::NoSuchService | ErrorKind::NoSuchDest
        )
    }

    pub(crate) fn refused(index: usize, op: &Op, errno: i32) -> Self {
        IpvsError::Refused {
            index,
            op: Box::new(op.clone()),
            errno,
        }
    }
}

fn classify(op: Option<&Op>, errno: i32) -> ErrorKind {
    match errno {
        libc::EEXIST => ErrorKind::AlreadyExists,
        libc::ESRCH => ErrorKind::NoSuchService,
        libc::ENOENT => match op {
            Some(Op::AddService(_)) | Some(Op::EditService(_)) => ErrorKind::SchedulerNotFound,
            _ => ErrorKind::NoSuchDest,
        },
        libc::ERANGE | libc::EINVAL | libc::EAFNOSUPPORT => ErrorKind::InvalidValue,
        libc::EPERM => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    }
}

/// ipvsadm's wording for `errno` after `op` (libipvs `ipvs_strerror`).
pub fn errno_text(op: &Op, errno: i32) -> String {
    let specific = match (op, errno) {
        (Op::AddService(_), libc::EEXIST) => Some("Service already exists"),
        (Op::AddService(_) | Op::EditService(_), libc::ENOENT) => {
            Some("Scheduler or persistence engine not found")
        }
        (Op::EditService(_) | Op::DelService(_), libc::ESRCH) => Some("No such service"),
        (Op::AddDest(..) | Op::EditDest(..) | Op::DelDest(..), libc::ESRCH) => {
            Some("Service not defined")
        }
        (Op::AddDest(..), libc::EEXIST) => Some("Destination already exists"),
        (Op::EditDest(..) | Op::DelDest(..), libc::ENOENT) => Some("No such destination"),
        _ => None,
    };
    if let Some(s) = specific {
        return s.to_string();
    }
    match errno {
        libc::EPERM => "Permission denied (you must be root)".into(),
        libc::EINVAL => {
            "Invalid operation.  Possibly wrong module version, address not unicast, ...".into()
        }
        libc::ENOPROTOOPT => "Protocol not available".into(),
        libc::ENOMEM => "Memory allocation problem".into(),
        libc::EOPNOTSUPP => "Operation not supported with IPv6".into(),
        libc::EAFNOSUPPORT => "Operation not supported with specified address family".into(),
        libc::EMSGSIZE => "Module is wrong version".into(),
        libc::ERANGE => {
            "Value out of range (weight, or lower threshold above upper threshold)".into()
        }
        e => std::io::Error::from_raw_os_error(e).to_string(),
    }
}
