//! The client's one error type.
//!
//! It is `Clone` because one failure often has many owners: a broken
//! connection fails every request in flight on it, and a failed batch fails
//! every record in it. I/O errors are kept as text for that reason.

use std::io;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// Everything that can go wrong talking to a broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The TCP connection could not be opened.
    #[error("cannot reach the broker at {addr}: {reason}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why, in words ("connection refused").
        reason: String,
    },
    /// None of the bootstrap addresses could be reached.
    #[error("no broker reachable at {bootstrap}: {reasons}")]
    NoBroker {
        /// The bootstrap list as configured.
        bootstrap: String,
        /// Each address's failure, joined.
        reasons: String,
    },
    /// An established connection failed or was closed by the broker.
    #[error("connection to {addr} failed: {reason}")]
    Io {
        /// The broker's address.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// The broker sent something that does not follow the protocol.
    #[error("protocol error from {addr}: {reason}")]
    Protocol {
        /// The broker's address.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// A request could not be encoded (a record or request too large...).
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// The broker answered with a Kafka error code.
    #[error("{name} (Kafka error {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The Kafka error code.
        code: i16,
        /// Its name in Kafka's Errors.java, in CamelCase (`NotLeaderOrFollower`).
        name: String,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },
    /// No answer within the request timeout; the connection is closed.
    #[error("request to {addr} timed out after {after:?}")]
    Timeout {
        /// The broker's address.
        addr: String,
        /// The timeout in force.
        after: Duration,
    },
    /// The topic does not exist.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The topic exists but has no such partition.
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// CreateTopics for a topic that already exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// The partition has no leader right now (an election, a broker down).
    #[error("topic {topic:?} partition {partition} has no leader")]
    NoLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// Neither side has a common version of an API the client needs.
    #[error("the broker at {addr} does not support {api} at any version this client speaks")]
    UnsupportedApi {
        /// The broker's address.
        addr: String,
        /// The API's name.
        api: String,
    },
    /// The producer's buffer is full; retry later or use `send_async`.
    #[error("producer buffer is full ({limit_bytes} bytes)")]
    BufferFull {
        /// The configured `buffer_memory_bytes`.
        limit_bytes: usize,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The producer or consumer was closed while the operation was pending.
    #[error("the client was closed")]
    Closed,
}

impl Error {
    /// `Some(Error::Kafka)` for a non-zero Kafka error code, `None` for 0.
    pub fn from_code(code: i16, message: Option<&str>) -> Option<Error> {
        let error = ResponseError::try_from_code(code)?;
        let name = match error {
            ResponseError::Unknown(_) => "UnknownErrorCode".to_owned(),
            known => format!("{known}"),
        };
        Some(Error::Kafka {
            code,
            name,
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        })
    }

    /// The error for a code known to be non-zero (a zero code reads as a protocol oddity, not success).
    pub(crate) fn kafka(code: i16, message: Option<&str>) -> Error {
        Error::from_code(code, message).unwrap_or_else(|| Error::Kafka {
            code,
            name: "None".to_owned(),
            message: message.map(str::to_owned),
        })
    }

    /// The Kafka error code, if this is a Kafka error.
    pub fn code(&self) -> Option<i16> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again later (after a metadata refresh) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            Error::Connect { .. }
            | Error::NoBroker { .. }
            | Error::Io { .. }
            | Error::Timeout { .. }
            | Error::NoLeader { .. } => true,
            _ => false,
        }
    }

    /// Whether the error says the client's metadata (leaders) is out of date.
    pub fn invalidates_metadata(&self) -> bool {
        matches!(self.code(), Some(3 | 5 | 6 | 9 | 74 | 75))
            || matches!(
                self,
                Error::Io { .. } | Error::Timeout { .. } | Error::NoLeader { .. }
            )
    }

    pub(crate) fn connect(addr: &str, error: &io::Error) -> Error {
        Error::Connect {
            addr: addr.to_owned(),
            reason: io_reason(error),
        }
    }

    pub(crate) fn io(addr: &str, error: &io::Error) -> Error {
        Error::Io {
            addr: addr.to_owned(),
            reason: io_reason(error),
        }
    }

    pub(crate) fn protocol(addr: &str, reason: impl std::fmt::Display) -> Error {
        Error::Protocol {
            addr: addr.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// An I/O error in plain words: "connection refused" rather than "Connection refused (os error 111)".
fn io_reason(error: &io::Error) -> String {
    let text = match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset by the broker",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::BrokenPipe => "connection closed by the broker",
        io::ErrorKind::UnexpectedEof => "connection closed by the broker",
        io::ErrorKind::TimedOut => "timed out",
        io::ErrorKind::AddrNotAvailable => "address not available",
        io::ErrorKind::NotFound => "host not found",
        _ => return error.to_string(),
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_carry_their_name_and_message() {
        let error = Error::from_code(36, Some("Topic 'x' already exists.")).expect("non-zero");
        assert_eq!(
            error.to_string(),
            "TopicAlreadyExists (Kafka error 36): Topic 'x' already exists."
        );
        assert_eq!(
            Error::from_code(6, None).expect("non-zero").to_string(),
            "NotLeaderOrFollower (Kafka error 6)"
        );
        assert!(Error::from_code(6, None).expect("non-zero").is_retriable());
        assert!(Error::from_code(0, None).is_none());
        assert_eq!(
            Error::from_code(9999, None).expect("non-zero").to_string(),
            "UnknownErrorCode (Kafka error 9999)"
        );
    }

    #[test]
    fn refused_connections_read_plainly() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            Error::connect("localhost:9092", &refused).to_string(),
            "cannot reach the broker at localhost:9092: connection refused"
        );
    }
}
