//! Starting and stopping the broker: checks first, then one shard per
//! core, each with its partitions, its end of the channel mesh and its own
//! listener (SO_REUSEPORT, so the kernel spreads connections over shards).
//! On SIGTERM or SIGINT the reverse, every shard in step: stop accepting,
//! finish the requests in flight, flush and close every partition (leaving
//! clean-shutdown markers), exit.
//!
//! - [`phases`]: the points all shards pass together.
//! - [`listener`]: one shard's accept loop and its connections.
//! - [`placement`]: fitting the recorded partition placement to the shard
//!   count, and removing partition directories no topic owns.

pub mod listener;
pub mod malloc;
pub mod phases;
pub mod placement;

use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::preflight::{self, IO_MEMORY_PER_SHARD};
use crate::shard::maintenance;
use crate::shard::mesh::{self, Envelope, Mesh};
use crate::shard::{Shard, CONTROLLER_SHARD};
use crate::topics::{ShardId, TopicStore};
use crate::txn::producer_ids::ProducerIds;
use phases::{Phase, Phases};

/// Messages a shard may have queued towards another before sending waits.
const MESH_CHANNEL_CAPACITY: usize = 1024;
/// How long shutdown waits for connections to finish their requests.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How often a shard checks whether a stop signal arrived.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Why the broker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A start-up check failed.
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    /// The topic metadata could not be loaded.
    #[error(transparent)]
    Store(#[from] crate::topics::StoreError),
    /// The producer id block could not be loaded.
    #[error(transparent)]
    ProducerIds(#[from] crate::txn::producer_ids::ProducerIdError),
    /// A shard could not open its partitions.
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    /// The data directory could not be tidied at start-up.
    #[error("cannot tidy the data directory {path}: {source}")]
    DataDir {
        /// The directory or file.
        path: std::path::PathBuf,
        /// The error.
        source: io::Error,
    },
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
    /// The executors could not start.
    #[error("cannot start the shard executors: {0}")]
    Executor(String),
    /// Another shard failed to start; its own error says why.
    #[error("another shard failed to start")]
    Aborted,
}

/// Runs the broker until SIGTERM or SIGINT.
pub fn run(mut config: BrokerConfig) -> Result<(), AppError> {
    malloc::keep_freed_memory();
    config.data_dir = preflight::create_data_dir(&config.data_dir)?;
    fit_cores_to_memlock(&mut config);
    let _lock = preflight::check(&config.data_dir, config.cores)?;
    probe_port(config.listen)?;
    let mut store = TopicStore::load(&config.data_dir)?;
    if placement::fit_to_shards(&mut store, config.cores) {
        tracing::info!(
            shards = config.cores,
            "partitions re-placed for a new shard count"
        );
        store.save(&config.data_dir)?;
    }
    placement::remove_orphans(&config.data_dir, &store)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| AppError::Executor(e.to_string()))?;
    }
    let shards = config.cores;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    // Pinned, one per CPU, unless more shards than CPUs are asked for
    // (tests run 4 or 8 shards on 2-CPU machines).
    let placement = if shards <= cpus {
        PoolPlacement::MaxSpread(shards, None)
    } else {
        PoolPlacement::Unbound(shards)
    };
    let mesh: MeshBuilder<Envelope, Full> = MeshBuilder::full(shards, MESH_CHANNEL_CAPACITY);
    let phases = Arc::new(Phases::new(shards));
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name("kelp-shard")
        .io_memory(IO_MEMORY_PER_SHARD)
        .on_all_shards(move || run_shard(config, store, mesh, stop, phases))
        .map_err(|e| AppError::Executor(e.to_string()))?;
    let mut first_error = None;
    for result in handles.join_all() {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => Err(AppError::Executor(e.to_string())),
        };
        match (outcome, &first_error) {
            (Ok(()), _) | (Err(AppError::Aborted), Some(_)) => {}
            (Err(e), _) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// With no `--cores`, Kelp runs a shard per CPU, but only as many as
/// `ulimit -l` has room for: a default start must work on a big machine
/// with the usual 8 MiB limit. An explicit `--cores` is checked instead.
fn fit_cores_to_memlock(config: &mut BrokerConfig) {
    if config.cores_chosen {
        return;
    }
    if let Some(allowed) = preflight::shards_memlock_allows() {
        if (1..config.cores).contains(&allowed) {
            tracing::warn!(
                cpus = config.cores,
                shards = allowed,
                "ulimit -l has room for {allowed} shards only; raise it (or pass --cores) to use every CPU"
            );
            config.cores = allowed;
        }
    }
}

/// How long a start waits for a port held by a broker that just died: the
/// kernel releases a killed process's io_uring sockets (its listener among
/// them) only once the ring's teardown finishes, a moment after the exit.
const PORT_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// glommio binds with SO_REUSEPORT, which would let a second broker share
/// the port silently; a plain bind first finds any listener already there.
fn probe_port(addr: std::net::SocketAddr) -> Result<(), AppError> {
    let deadline = std::time::Instant::now() + PORT_RELEASE_WAIT;
    let mut warned = false;
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(probe) => {
                drop(probe);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                if std::time::Instant::now() >= deadline {
                    return Err(AppError::PortInUse { addr });
                }
                if !warned {
                    tracing::warn!(%addr, "the port is in use; waiting up to 10 s in case a broker that just stopped still holds it");
                    warned = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(source) => return Err(AppError::Listen { addr, source }),
        }
    }
}

/// One shard's life: join the mesh, open its partitions, serve, and stop in
/// step with the others.
async fn run_shard(
    config: BrokerConfig,
    store: TopicStore,
    mesh: MeshBuilder<Envelope, Full>,
    stop: Arc<AtomicBool>,
    phases: Arc<Phases>,
) -> Result<(), AppError> {
    let (senders, receivers) = mesh
        .join()
        .await
        .map_err(|e| AppError::Executor(format!("joining the shard mesh: {e}")))?;
    let id = ShardId(senders.peer_id());
    let config = Rc::new(config);
    let controller = if id == CONTROLLER_SHARD {
        let producer_ids = ProducerIds::load(&config.data_dir)?;
        Some(Controller::new(store.clone(), producer_ids))
    } else {
        None
    };
    let shard = Shard::new(id, Rc::clone(&config), controller, Mesh::new(senders));
    let _receive_loops = mesh::serve(&shard, receivers);
    let started = start(&shard, store).await;
    if let Err(e) = &started {
        tracing::error!(shard = id.0, error = %e, "shard failed to start");
        phases.abort();
    }
    let outcome = match phases.arrive(Phase::Started).await {
        Ok(()) => {
            let listener = started?;
            if id == CONTROLLER_SHARD {
                tracing::info!(addr = %config.listen, advertised = %format!("{}:{}", config.advertised_host, config.advertised_port), data_dir = %config.data_dir.display(), shards = shard.shards(), "kelp is ready for Kafka clients");
            }
            let accepting = listener::accept(&shard, listener);
            let _maintenance = maintenance::start(&shard);
            let _transactions = {
                let shard = Rc::clone(&shard);
                glommio::spawn_local(async move { shard.txns().load_owned(&shard).await })
            };
            while !stop.load(Ordering::Relaxed) {
                glommio::timer::sleep(STOP_POLL).await;
            }
            if id == CONTROLLER_SHARD {
                tracing::info!("shutting down: finishing requests in flight");
            }
            accepting.drain(&shard, DRAIN_LIMIT).await;
            Ok(())
        }
        Err(_) => started.map(drop).and(Err(AppError::Aborted)),
    };
    // Every shard stops serving before any closes its partitions: a request
    // still running on one shard may need another's.
    let _ = phases.arrive(Phase::Drained).await;
    shard.close().await;
    let _ = phases.arrive(Phase::Closed).await;
    shard.close_mesh();
    if id == CONTROLLER_SHARD && outcome.is_ok() {
        tracing::info!("stopped cleanly");
    }
    outcome
}

/// Opens the shard's partitions and binds its listener.
async fn start(
    shard: &Rc<Shard>,
    store: TopicStore,
) -> Result<glommio::net::TcpListener, AppError> {
    shard.apply_topics(store).await?;
    let addr = shard.config.listen;
    listener::bind(addr).map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            AppError::PortInUse { addr }
        } else {
            AppError::Listen { addr, source }
        }
    })
}
