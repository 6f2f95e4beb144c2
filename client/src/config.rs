//! Settings shared by every client: where the cluster is, who we are, how long to wait.

use std::time::Duration;

/// How to reach the cluster; shared by [`crate::Admin`], [`crate::Producer`] and [`crate::Consumer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Comma-separated `host:port` list of brokers to ask for the cluster's metadata first.
    pub bootstrap: String,
    /// Sent in every request header; brokers log it and use it for quotas.
    pub client_id: String,
    /// How long to wait for one response (and for a TCP connect) before giving up on the connection.
    pub request_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            bootstrap: "localhost:9092".to_owned(),
            client_id: "kelp-client".to_owned(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ClientConfig {
    /// Defaults with `bootstrap` set.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            ..Self::default()
        }
    }

    /// The bootstrap addresses, trimmed, empty entries dropped.
    pub fn bootstrap_addrs(&self) -> impl Iterator<Item = &str> {
        self.bootstrap
            .split(',')
            .map(str::trim)
            .filter(|addr| !addr.is_empty())
    }
}
