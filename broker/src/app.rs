//! Starting and stopping the broker: checks first, then the shard, then the
//! listener; on SIGTERM or SIGINT the reverse: stop accepting, flush and
//! close every partition (leaving clean-shutdown markers), exit.
//!
//! The broker runs one shard today: cross-shard request routing (the
//! channel mesh) is the next step of the thread-per-core design, and until
//! it lands every partition lives on shard 0.

use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use kelp_net::connection::{serve, ConnectionLimits, HandlerOutcome, RequestHandler};
use kelp_net::header::RequestHeader;

use crate::config::BrokerConfig;
use crate::preflight::{self, IO_MEMORY_PER_SHARD};
use crate::shard::Shard;
use crate::topics::{ShardId, TopicStore};

/// Why the broker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A start-up check failed.
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    /// The topic metadata could not be loaded.
    #[error(transparent)]
    Store(#[from] crate::topics::StoreError),
    /// The shard could not open its partitions.
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    /// The listen address is taken.
    #[error("cannot listen on {addr}: the port is already in use (another Kafka or Kelp?); pass --listen with a free port")]
    PortInUse {
        /// The address.
        addr: std::net::SocketAddr,
    },
    /// Another socket error.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// The executor could not start.
    #[error("cannot start the shard executor: {0}")]
    Executor(String),
}

/// Serves requests of one connection on its shard.
struct BrokerHandler {
    shard: Rc<Shard>,
}

impl RequestHandler for BrokerHandler {
    async fn handle(&self, header: RequestHeader, body: Bytes) -> HandlerOutcome {
        crate::kafka::dispatch(&self.shard, header, body).await
    }
}

/// Runs the broker until SIGTERM or SIGINT.
pub fn run(mut config: BrokerConfig) -> Result<(), AppError> {
    config.data_dir = preflight::create_data_dir(&config.data_dir)?;
    let _lock = preflight::check(&config.data_dir, 1)?;
    // glommio binds with SO_REUSEPORT, which would let a second broker share
    // the port silently; a plain bind first finds any listener already there.
    match std::net::TcpListener::bind(config.listen) {
        Ok(probe) => drop(probe),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(AppError::PortInUse {
                addr: config.listen,
            })
        }
        Err(source) => {
            return Err(AppError::Listen {
                addr: config.listen,
                source,
            })
        }
    }
    if config.cores > 1 {
        tracing::info!(
            asked = config.cores,
            "running one shard: cross-shard routing is not built yet"
        );
    }
    config.cores = 1;
    let store = TopicStore::load(&config.data_dir)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| AppError::Executor(e.to_string()))?;
    }
    let config = Rc::new(config);
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("kelp-shard-0")
        .io_memory(IO_MEMORY_PER_SHARD)
        .make()
        .map_err(|e| AppError::Executor(e.to_string()))?;
    executor.run(async move {
        let addr = config.listen;
        let listener = TcpListener::bind(addr).map_err(|e| match e {
            glommio::GlommioError::IoError(source) if source.kind() == io::ErrorKind::AddrInUse => AppError::PortInUse { addr },
            other => AppError::Listen { addr, source: other.into() },
        })?;
        let shard = Rc::new(Shard::open(ShardId(0), Rc::clone(&config), store).await?);
        tracing::info!(%addr, advertised = %format!("{}:{}", config.advertised_host, config.advertised_port), data_dir = %config.data_dir.display(), "kelp is ready for Kafka clients");
        let handler = Rc::new(BrokerHandler { shard: Rc::clone(&shard) });
        let limits = ConnectionLimits { max_frame_bytes: config.max_frame_bytes, ..ConnectionLimits::default() };
        let accept = glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let handler = Rc::clone(&handler);
                        glommio::spawn_local(async move {
                            if let Err(e) = serve(stream, handler, limits).await {
                                tracing::debug!(error = %e, "connection closed");
                            }
                        })
                        .detach();
                    }
                    Err(e) => tracing::warn!(error = %e, "accept failed"),
                }
            }
        });
        while !stop.load(Ordering::Relaxed) {
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!("shutting down: closing partitions");
        let _cancelled = accept.cancel().await;
        shard.close().await;
        tracing::info!("stopped cleanly");
        Ok::<(), AppError>(())
    })
}
