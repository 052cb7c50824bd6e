//! The runtime's one error type. Callers (the kubelet) match on
//! [`ErrorKind`] to decide what a pod's status says (ErrImagePull,
//! CreateContainerConfigError, …); the message is for humans.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The sandbox, container, image or exec session does not exist.
    NotFound,
    /// An object with this name or id exists already.
    AlreadyExists,
    /// The runtime (daemon, socket, helper) cannot be reached right now.
    Unavailable,
    /// A registry refused, could not be reached, or served bad content.
    ImagePullFailed,
    /// An archive or image is malformed.
    InvalidImage,
    /// The request itself is wrong (bad spec, bad reference, bad option).
    InvalidSpec,
    /// The operation does not fit the object's state (start a running
    /// container, exec in a stopped one).
    FailedPrecondition,
    /// The operation did not finish in time.
    Timeout,
    /// Anything else: an IO or system call failure on this node.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::ImagePullFailed => "image pull failed",
            ErrorKind::InvalidImage => "invalid image",
            ErrorKind::InvalidSpec => "invalid spec",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// A runtime error: a kind to match and a message that says what and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RuntimeError {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RuntimeError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found"))
    }
    pub fn already_exists(what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::AlreadyExists, format!("{what} already exists"))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSpec, message)
    }
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn pull(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ImagePullFailed, message)
    }
    /// An IO error while doing `what`; a missing file is `Internal` too,
    /// since callers pass ids, not paths.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(ErrorKind::Internal, format!("{what}: {err}"))
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}
