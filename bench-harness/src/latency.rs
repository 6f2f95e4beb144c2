//! Latency recording: one HdrHistogram per measured path, in microseconds,
//! and the summary figures every report uses.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency tracked: one minute, in microseconds.
const MAX_MICROS: u64 = 60_000_000;
/// Significant decimal digits kept.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of one path (produce acknowledgement, end to end).
#[derive(Clone, Debug)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS)
                .expect("the bounds are valid constants"),
        }
    }
}

/// The figures a report gives for one path, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latencies {
    /// Records one latency; values past a minute count as a minute.
    pub fn record_micros(&mut self, micros: u64) {
        self.histogram
            .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds another recorder's samples (per-core recorders merge at the end).
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail.
        self.histogram
            .add(&other.histogram)
            .expect("recorders share their bounds");
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The summary figures.
    pub fn summary(&self) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| ms(self.histogram.value_at_quantile(q));
        if self.histogram.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.histogram.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: ms(self.histogram.max()),
        }
    }

    /// The percentile distribution in HdrHistogram's text format (`.hgrm`,
    /// values in milliseconds), which HdrHistogram's plotter reads.
    pub fn percentile_distribution(&self) -> String {
        let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
        for step in self.histogram.iter_quantiles(5) {
            let quantile = step.quantile_iterated_to();
            let value = step.value_iterated_to() as f64 / 1000.0;
            let inverse = if quantile < 1.0 {
                format!("{:14.2}", 1.0 / (1.0 - quantile))
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{value:12.3} {quantile:14.12} {:10} {inverse}\n",
                self.histogram.count_between(0, step.value_iterated_to())
            ));
        }
        out.push_str(&format!(
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]\n",
            self.histogram.mean() / 1000.0,
            self.histogram.stdev() / 1000.0,
            self.histogram.max() as f64 / 1000.0,
            self.histogram.len(),
        ));
        out
    }

    /// (percentile as 1/(1-p), latency ms) points of the distribution, for plots.
    pub fn curve(&self) -> Vec<(f64, f64)> {
        self.histogram
            .iter_quantiles(5)
            .filter(|step| step.quantile_iterated_to() < 1.0)
            .map(|step| {
                (
                    1.0 / (1.0 - step.quantile_iterated_to()),
                    step.value_iterated_to() as f64 / 1000.0,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_distribution_follow_the_samples() {
        let mut latencies = Latencies::default();
        for micros in 1..=10_000u64 {
            latencies.record_micros(micros);
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 10_000);
        assert!((summary.p50_ms - 5.0).abs() < 0.01, "{summary:?}");
        assert!((summary.p99_ms - 9.9).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 10.0).abs() < 0.01, "{summary:?}");
        let text = latencies.percentile_distribution();
        assert!(text.starts_with("       Value     Percentile"));
        assert!(text.contains("#[Max     ="));
        let curve = latencies.curve();
        assert!(curve
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let mut other = Latencies::default();
        other.record_micros(50_000);
        latencies.merge(&other);
        assert!((latencies.summary().max_ms - 50.0).abs() < 0.1);
        assert_eq!(Latencies::default().summary(), Summary::default());
    }
}
