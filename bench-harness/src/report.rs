//! What a run prints and writes: a progress line every second, then a table,
//! a JSON file, the latency distributions as HdrHistogram percentile files
//! (`.hgrm`) with an SVG plot of them, and last the one-line result.
//!
//! MB means 2^20 bytes, as in Kafka's own performance tools.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::latency::{Latencies, Summary};
use crate::plot::{percentile_plot, Series};
use crate::scenario::Workload;

/// Bytes in a MB, as Kafka's tools count.
const MB: f64 = (1 << 20) as f64;

/// The outcome of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// What ran.
    pub workload: Workload,
    /// The broker the run was against.
    pub bootstrap: String,
    /// When the measured part ended, seconds since the epoch.
    pub finished_unix_s: u64,
    /// Length of the measured part.
    pub seconds: f64,
    /// Records produced (or consumed, for consume runs) while measuring.
    pub messages: u64,
    /// Their value bytes.
    pub bytes: u64,
    /// Records of the whole run, warm-up included (what a profiler of the
    /// broker saw).
    pub messages_whole_run: u64,
    /// Messages per second.
    pub msgs_s: f64,
    /// MB per second.
    pub mb_s: f64,
    /// The open-loop target, if the run had one.
    pub target_msgs_s: Option<u64>,
    /// Records the broker refused or that timed out.
    pub errors: u64,
    /// Produce-to-acknowledgement latency.
    pub produce_ack: Summary,
    /// Produce-to-consume latency.
    pub end_to_end: Summary,
}

impl Report {
    /// The latency the result line gives: end to end for end-to-end runs,
    /// produce acknowledgement otherwise (zero for consume-only runs).
    fn headline(&self) -> Summary {
        match self.workload {
            Workload::EndToEnd => self.end_to_end,
            Workload::Produce | Workload::Consume => self.produce_ack,
        }
    }

    /// The last line a run prints.
    pub fn result_line(&self) -> String {
        let latency = self.headline();
        format!(
            "result scenario={} msgs_s={:.0} mb_s={:.2} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3}",
            self.scenario, self.msgs_s, self.mb_s, latency.p50_ms, latency.p99_ms, latency.p999_ms
        )
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "scenario {} against {}: {} messages in {:.1} s, {} errors\n\n  {:<22}{:>14.0}\n  {:<22}{:>14.2}\n",
            self.scenario,
            self.bootstrap,
            self.messages,
            self.seconds,
            self.errors,
            "messages/s",
            self.msgs_s,
            "MB/s",
            self.mb_s
        );
        if let Some(target) = self.target_msgs_s {
            out.push_str(&format!("  {:<22}{:>14}\n", "target messages/s", target));
        }
        out.push_str(&format!(
            "\n  {:<22}{:>9}{:>9}{:>9}{:>9}{:>9}  (ms)\n",
            "latency", "p50", "p90", "p99", "p99.9", "max"
        ));
        for (name, s) in [
            ("produce ack", self.produce_ack),
            ("end to end", self.end_to_end),
        ] {
            if s.count > 0 {
                out.push_str(&format!(
                    "  {:<22}{:>9.3}{:>9.3}{:>9.3}{:>9.3}{:>9.3}\n",
                    name, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
                ));
            }
        }
        out
    }

    /// Writes `<scenario>.json`, a `.hgrm` per measured path and
    /// `<scenario>.svg` into `dir`; returns their paths.
    pub fn write_files(
        &self,
        dir: &Path,
        produce_ack: &Latencies,
        end_to_end: &Latencies,
    ) -> io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let json = dir.join(format!("{}.json", self.scenario));
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)?;
        written.push(json);
        let mut series = Vec::new();
        for (suffix, name, latencies) in [
            ("produce-ack", "produce ack", produce_ack),
            ("end-to-end", "end to end", end_to_end),
        ] {
            if latencies.count() == 0 {
                continue;
            }
            let path = dir.join(format!("{}-{suffix}.hgrm", self.scenario));
            std::fs::write(&path, latencies.percentile_distribution())?;
            written.push(path);
            series.push(Series {
                name,
                points: latencies.curve(),
            });
        }
        if !series.is_empty() {
            let svg = dir.join(format!("{}.svg", self.scenario));
            let title = format!(
                "{}: {:.0} msg/s, {:.1} MB/s",
                self.scenario, self.msgs_s, self.mb_s
            );
            std::fs::write(&svg, percentile_plot(&title, &series))?;
            written.push(svg);
        }
        Ok(written)
    }
}

/// One progress line: the last second's rate and the p99 so far.
pub fn progress_line(
    elapsed_s: u64,
    messages: u64,
    bytes: u64,
    interval_s: f64,
    p99_ms: f64,
) -> String {
    let interval_s = interval_s.max(1e-9);
    format!(
        "t={elapsed_s:>3}s  {:>12.0} msg/s  {:>9.2} MB/s  p99 {:.3} ms",
        messages as f64 / interval_s,
        bytes as f64 / MB / interval_s,
        p99_ms
    )
}

/// Rates of `messages` and `bytes` over `seconds`.
pub fn rates(messages: u64, bytes: u64, seconds: f64) -> (f64, f64) {
    let seconds = seconds.max(1e-9);
    (messages as f64 / seconds, bytes as f64 / MB / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let (msgs_s, mb_s) = rates(2_000_000, 200_000_000, 2.0);
        Report {
            scenario: "produce-100b".into(),
            workload: Workload::Produce,
            bootstrap: "localhost:9092".into(),
            finished_unix_s: 0,
            seconds: 2.0,
            messages: 2_000_000,
            bytes: 200_000_000,
            messages_whole_run: 2_500_000,
            msgs_s,
            mb_s,
            target_msgs_s: None,
            errors: 0,
            produce_ack: Summary {
                count: 10,
                p50_ms: 1.0,
                p90_ms: 2.0,
                p99_ms: 3.0,
                p999_ms: 4.0,
                max_ms: 5.0,
            },
            end_to_end: Summary::default(),
        }
    }

    #[test]
    fn the_result_line_has_the_agreed_shape() {
        assert_eq!(
            report().result_line(),
            "result scenario=produce-100b msgs_s=1000000 mb_s=95.37 p50_ms=1.000 p99_ms=3.000 p999_ms=4.000"
        );
        assert!(report().table().contains("produce ack"));
        assert!(!report().table().contains("end to end"));
        assert!(progress_line(3, 1000, 1 << 20, 1.0, 0.5).contains("1.00 MB/s"));
    }

    #[test]
    fn files_are_written_for_each_measured_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut produce = Latencies::default();
        produce.record_micros(1500);
        let written = report()
            .write_files(dir.path(), &produce, &Latencies::default())
            .unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "produce-100b.json",
                "produce-100b-produce-ack.hgrm",
                "produce-100b.svg"
            ]
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&written[0]).unwrap()).unwrap();
        assert_eq!(json["scenario"], "produce-100b");
    }
}
