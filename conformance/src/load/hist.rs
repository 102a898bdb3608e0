//! Latency recording: an HDR histogram in microseconds, and the counts of answers by status.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histogram can hold (10 minutes), in microseconds; longer ones are clamped.
const MAX_US: u64 = 600_000_000;
/// Error bodies kept per run, to show what went wrong without flooding the report.
const MAX_SAMPLES: usize = 5;

/// A latency histogram with microsecond resolution and three significant digits.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"),
        }
    }

    /// Records one latency (at least 1 µs, at most 10 minutes).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.hist.saturating_record(us);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Percentiles, mean and maximum.
    pub fn summary(&self) -> LatencySummary {
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.hist.len(),
            mean_us: (self.hist.mean() * 10.0).round() / 10.0,
            p50_us: self.hist.value_at_quantile(0.50),
            p90_us: self.hist.value_at_quantile(0.90),
            p99_us: self.hist.value_at_quantile(0.99),
            max_us: self.hist.max(),
        }
    }
}

/// What a latency histogram says, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of values.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest value.
    pub max_us: u64,
}

/// Everything one worker (or a whole run, once merged) observed.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Latency of every answered request, whatever its status.
    pub latency: Latency,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer (connect error, timeout, reset).
    pub transport_errors: u64,
    /// The first few error descriptions (status and the start of the body).
    pub samples: Vec<String>,
}

impl Recorder {
    /// Records an HTTP answer.
    pub fn answer(&mut self, status: u16, latency: Duration, body: &[u8]) {
        self.latency.record(latency);
        *self.statuses.entry(status).or_default() += 1;
        if !(200..300).contains(&status) && self.samples.len() < MAX_SAMPLES {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            self.samples.push(format!("{status}: {text}"));
        }
    }

    /// Records a request that got no answer.
    pub fn transport_error(&mut self, what: &str) {
        self.transport_errors += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(format!("transport: {what}"));
        }
    }

    /// Requests sent (answered or not).
    pub fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors
    }

    /// Non-2xx answers plus transport errors.
    pub fn errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.transport_errors
    }

    /// Adds everything `other` observed.
    pub fn merge(&mut self, other: &Recorder) {
        self.latency.merge(&other.latency);
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        for s in &other.samples {
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(s.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut l = Latency::new();
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        // Three significant digits: within 0.1 %.
        assert!((49_950..=50_050).contains(&s.p50_us), "{s:?}");
        assert!((89_900..=90_100).contains(&s.p90_us), "{s:?}");
        assert!((98_900..=99_100).contains(&s.p99_us), "{s:?}");
        assert!((99_900..=100_100).contains(&s.max_us), "{s:?}");
        assert!((s.mean_us - 50_500.0).abs() < 100.0, "{s:?}");
    }

    #[test]
    fn empty_and_clamped() {
        assert_eq!(Latency::new().summary(), LatencySummary::default());
        let mut l = Latency::new();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(10_000));
        let s = l.summary();
        assert_eq!(s.count, 2);
        assert_eq!(s.p50_us, 1);
        assert!(s.max_us >= MAX_US * 999 / 1000);
    }

    #[test]
    fn recorder_counts_errors_and_merges() {
        let mut a = Recorder::default();
        a.answer(200, Duration::from_micros(10), b"{}");
        a.answer(404, Duration::from_micros(20), b"not found");
        let mut b = Recorder::default();
        b.answer(201, Duration::from_micros(30), b"");
        b.transport_error("connection refused");
        a.merge(&b);
        assert_eq!(a.requests(), 4);
        assert_eq!(a.errors(), 2);
        assert_eq!(a.latency.count(), 3);
        assert_eq!(a.statuses.get(&200), Some(&1));
        assert_eq!(
            a.samples,
            vec!["404: not found", "transport: connection refused"]
        );
    }
}
