//! Kelp's bench harness (`kelp-bench`): load against any Kafka-compatible
//! broker, with latencies recorded in HdrHistograms.
//!
//! # Layout
//!
//! - [`scenario`]: what to run, from `bench-harness/scenarios/*.toml`.
//! - [`run`]: preparing the topic, the harness cores, warm-up and measurement.
//! - [`workload`]: the producers and consumers each harness core runs.
//! - [`rdkafka_producer`]: the same produce load from librdkafka, as a cross-check.
//! - [`progress`]: what the cores share with the main thread during a run.
//! - [`latency`]: latency histograms and their summaries.
//! - [`report`]: the progress line, table, JSON, `.hgrm` files and result line.
//! - [`plot`]: the SVG plot of latency by percentile.

pub mod latency;
pub mod plot;
pub mod progress;
pub mod rdkafka_producer;
pub mod report;
pub mod run;
pub mod scenario;
pub mod workload;
