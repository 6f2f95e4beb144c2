//! Running a scenario: prepare the topic (and fill it, for consume runs),
//! start the clients on the harness cores, warm up, measure, report.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::{LocalExecutorBuilder, LocalExecutorPoolBuilder, Placement, PoolPlacement};
use kelp_client::{
    Admin, ClientConfig, Cluster, Compression, Consumer, ConsumerConfig, Error, Producer,
    ProducerConfig, StartOffset,
};

use crate::latency::Latencies;
use crate::progress::Progress;
use crate::report::{progress_line, rates, Report};
use crate::scenario::{Rate, Scenario, Workload};
use crate::workload::{consume, produce, Payloads, ProducerPlan};

/// How long the probe of a `half-of-max` run measures the top rate.
const PROBE: Duration = Duration::from_secs(5);

/// Which client drives the producers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// kelp-client on glommio, the harness's own.
    Kelp,
    /// librdkafka through the rdkafka crate (produce scenarios only), to
    /// cross-check the harness against a client nobody here wrote.
    Rdkafka {
        /// With `enable.idempotence` (producer ids and sequences; acks=-1).
        idempotent: bool,
        /// `max.in.flight.requests.per.connection`, if not librdkafka's default.
        max_in_flight: Option<u32>,
    },
}

/// Where and how to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The broker's address.
    pub bootstrap: String,
    /// Where result files go.
    pub out_dir: PathBuf,
    /// The producers' client.
    pub client: Client,
}

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The client failed (unreachable broker, refused topic).
    #[error("{0}")]
    Client(String),
    /// The harness executors could not start.
    #[error("cannot start the harness executors: {0}")]
    Executor(String),
    /// Writing result files failed.
    #[error("cannot write results: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `scenario` and returns its report (files already written).
pub fn run(scenario: &Scenario, options: &Options) -> Result<Report, RunError> {
    let partitions = prepare(scenario, options)?;
    let rate = match scenario.rate {
        Rate::Max => None,
        Rate::PerSecond(rate) => Some(rate),
        Rate::HalfOfMax => {
            let mut probe = scenario.clone();
            probe.workload = Workload::Produce;
            probe.rate = Rate::Max;
            probe.warmup_seconds = 1;
            probe.duration_seconds = PROBE.as_secs();
            probe.consumers = 0;
            println!("measuring the top rate for {} s first", PROBE.as_secs());
            let (top, _, _) = measure(&probe, options, partitions, None)?;
            let half = (top.msgs_s / 2.0).max(1.0) as u64;
            println!("top rate {:.0} msg/s: running at {half} msg/s", top.msgs_s);
            Some(half)
        }
    };
    let (report, produce_ack, end_to_end) = measure(scenario, options, partitions, rate)?;
    print!("{}", report.table());
    for path in report.write_files(&options.out_dir, &produce_ack, &end_to_end)? {
        println!("wrote {}", path.display());
    }
    Ok(report)
}

/// Creates the topic if missing (and fills it for consume runs); returns
/// its partition count.
fn prepare(scenario: &Scenario, options: &Options) -> Result<i32, RunError> {
    let scenario = scenario.clone();
    let bootstrap = options.bootstrap.clone();
    on_one_executor(async move {
        let admin = Admin::connect(ClientConfig::new(bootstrap.clone())).await?;
        let topic = scenario.topic();
        match admin.create_topic(&topic, scenario.partitions, &[]).await {
            Ok(()) | Err(Error::TopicExists(_)) => {}
            Err(e) => return Err(e),
        }
        let partitions = admin.describe_topic(&topic).await?.partitions.len() as i32;
        if scenario.workload == Workload::Consume && scenario.prefill_messages > 0 {
            let started = Instant::now();
            let producer =
                Producer::with_cluster(Rc::clone(admin.cluster()), producer_config(&scenario)?)?;
            let payloads = Payloads::new(&scenario, false);
            let value = payloads.value_for_prefill();
            let topic: Rc<str> = Rc::from(topic.as_str());
            for _ in 0..scenario.prefill_messages {
                drop(
                    producer
                        .send_async(kelp_client::ProducerRecord::new(
                            Rc::clone(&topic),
                            value.clone(),
                        ))
                        .await,
                );
            }
            producer.flush().await;
            println!(
                "filled {} with {} messages in {:.1} s",
                topic,
                scenario.prefill_messages,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(partitions)
    })?
    .map_err(|e| RunError::Client(e.to_string()))
}

/// Runs `future` on a fresh single executor and returns its output.
fn on_one_executor<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + 'static,
) -> Result<T, RunError> {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .map_err(|e| RunError::Executor(e.to_string()))?;
    Ok(executor.run(future))
}

fn producer_config(scenario: &Scenario) -> Result<ProducerConfig, Error> {
    let compression = match scenario.compression.as_str() {
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => Compression::None,
    };
    Ok(ProducerConfig {
        acks: scenario.acks,
        batch_size: scenario.batch_size,
        linger: Duration::from_millis(scenario.linger_ms),
        compression,
        ..ProducerConfig::default()
    })
}

/// One warm-up and measured run of the clients; `rate` in messages per
/// second over all producers.
fn measure(
    scenario: &Scenario,
    options: &Options,
    partitions: i32,
    rate: Option<u64>,
) -> Result<(Report, Latencies, Latencies), RunError> {
    let (progress, samples) = Progress::new();
    let progress = Arc::new(progress);
    let epoch = Instant::now();
    let cores = scenario.harness_cores;
    let tickets = Arc::new(AtomicUsize::new(0));
    let workers = if let Client::Rdkafka {
        idempotent,
        max_in_flight,
    } = options.client
    {
        if scenario.workload != Workload::Produce || rate.is_some() {
            return Err(RunError::Client(
                "--client rdkafka runs produce scenarios at full speed only".to_owned(),
            ));
        }
        let threads = crate::rdkafka_producer::start(
            scenario,
            &options.bootstrap,
            (idempotent, max_in_flight),
            &progress,
            epoch,
        )
        .map_err(|e| RunError::Client(e.to_string()))?;
        Workers::Threads(threads)
    } else {
        let (scenario, bootstrap, progress) = (
            scenario.clone(),
            options.bootstrap.clone(),
            Arc::clone(&progress),
        );
        Workers::Pool(
            LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(cores))
                .name("kelp-bench")
                .on_all_shards(move || async move {
                    let core = tickets.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = core_main(
                        core, scenario, bootstrap, partitions, rate, &progress, epoch,
                    )
                    .await
                    {
                        progress.fail(format!("cannot reach the broker: {e}"));
                    }
                })
                .map_err(|e| RunError::Executor(e.to_string()))?,
        )
    };
    let mut produce_ack = Latencies::default();
    let mut end_to_end = Latencies::default();
    let merge = |produce_ack: &mut Latencies, end_to_end: &mut Latencies| {
        for sample in samples.try_iter() {
            produce_ack.merge(&sample.produce_ack);
            end_to_end.merge(&sample.end_to_end);
        }
    };
    let warm_until = Instant::now() + Duration::from_secs(scenario.warmup_seconds);
    while Instant::now() < warm_until && !progress.stopped() {
        std::thread::sleep(Duration::from_millis(50));
    }
    progress.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut last = (started, 0u64, 0u64);
    let mut second = 0;
    while started.elapsed() < Duration::from_secs(scenario.duration_seconds) && !progress.stopped()
    {
        std::thread::sleep(Duration::from_millis(1000).saturating_sub(last.0.elapsed()));
        second += 1;
        merge(&mut produce_ack, &mut end_to_end);
        let now = (
            Instant::now(),
            progress.messages.load(Ordering::Relaxed),
            progress.bytes.load(Ordering::Relaxed),
        );
        let headline = if scenario.workload == Workload::EndToEnd {
            &end_to_end
        } else {
            &produce_ack
        };
        println!(
            "{}",
            progress_line(
                second,
                now.1 - last.1,
                now.2 - last.2,
                now.0.duration_since(last.0).as_secs_f64(),
                headline.summary().p99_ms
            )
        );
        last = now;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (messages, bytes) = (
        progress.messages.load(Ordering::Relaxed),
        progress.bytes.load(Ordering::Relaxed),
    );
    progress.measuring.store(false, Ordering::Relaxed);
    progress.stop.store(true, Ordering::Relaxed);
    workers.join()?;
    merge(&mut produce_ack, &mut end_to_end);
    if let Some(why) = progress.failure() {
        return Err(RunError::Client(why));
    }
    let (msgs_s, mb_s) = rates(messages, bytes, seconds);
    let report = Report {
        scenario: scenario.name.clone(),
        workload: scenario.workload,
        bootstrap: options.bootstrap.clone(),
        finished_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        seconds,
        messages,
        bytes,
        messages_whole_run: progress.messages_whole_run.load(Ordering::Relaxed),
        msgs_s,
        mb_s,
        target_msgs_s: rate,
        errors: progress.errors.load(Ordering::Relaxed),
        produce_ack: produce_ack.summary(),
        end_to_end: end_to_end.summary(),
    };
    Ok((report, produce_ack, end_to_end))
}

/// What runs the clients.
enum Workers {
    /// Glommio executors with kelp-client.
    Pool(glommio::PoolThreadHandles<()>),
    /// librdkafka producer threads.
    Threads(Vec<std::thread::JoinHandle<()>>),
}

impl Workers {
    fn join(self) -> Result<(), RunError> {
        match self {
            Workers::Pool(pool) => {
                for result in pool.join_all() {
                    result.map_err(|e| RunError::Executor(e.to_string()))?;
                }
            }
            Workers::Threads(threads) => {
                for thread in threads {
                    thread
                        .join()
                        .map_err(|_| RunError::Executor("a producer thread panicked".to_owned()))?;
                }
            }
        }
        Ok(())
    }
}

/// One harness core: its share of the producers and consumers.
async fn core_main(
    core: usize,
    scenario: Scenario,
    bootstrap: String,
    partitions: i32,
    rate: Option<u64>,
    progress: &Arc<Progress>,
    epoch: Instant,
) -> Result<(), Error> {
    let cores = scenario.harness_cores;
    let cluster: Rc<Cluster> = Cluster::connect(ClientConfig::new(bootstrap)).await?;
    let scenario = Rc::new(scenario);
    let timestamped = scenario.workload == Workload::EndToEnd;
    let payloads = Rc::new(Payloads::new(&scenario, timestamped));
    let mut tasks = Vec::new();
    let consumers = if scenario.workload == Workload::Produce {
        0
    } else {
        scenario.consumers
    };
    for index in (core..consumers).step_by(cores) {
        let mine: Vec<i32> = (0..partitions)
            .filter(|p| *p as usize % consumers == index)
            .collect();
        let start = if timestamped {
            StartOffset::Latest
        } else {
            StartOffset::Earliest
        };
        let consumer = Consumer::with_cluster(Rc::clone(&cluster), ConsumerConfig::default());
        let total = (scenario.workload == Workload::Consume).then_some(scenario.prefill_messages);
        tasks.push(glommio::spawn_local(consume(
            consumer,
            Rc::clone(&scenario),
            mine,
            start,
            timestamped,
            total,
            Arc::clone(progress),
            epoch,
        )));
    }
    let producers = if scenario.workload == Workload::Consume {
        0
    } else {
        scenario.producers
    };
    for _ in (core..producers).step_by(cores) {
        let producer = Rc::new(Producer::with_cluster(
            Rc::clone(&cluster),
            producer_config(&scenario)?,
        )?);
        let plan = ProducerPlan {
            rate: rate.map(|r| r as f64 / producers as f64),
        };
        tasks.push(glommio::spawn_local(produce(
            producer,
            Rc::clone(&scenario),
            Rc::clone(&payloads),
            plan,
            Arc::clone(progress),
            epoch,
        )));
    }
    for task in tasks {
        task.await;
    }
    Ok(())
}
