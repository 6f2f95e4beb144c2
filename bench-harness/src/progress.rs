//! What the harness cores share with the main thread while a run goes:
//! counters it reads every second for the progress line, latency samples
//! the cores hand over each second, and the switches that end the warm-up
//! and the run. Only the harness uses these; the broker has no such locks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Mutex;

use crate::latency::Latencies;

/// Latency samples one core recorded since its last hand-over.
pub struct Samples {
    /// Produce-to-acknowledgement.
    pub produce_ack: Latencies,
    /// Produce-to-consume.
    pub end_to_end: Latencies,
}

/// The shared state of a run.
pub struct Progress {
    /// Set when the warm-up is over: from then on, work counts.
    pub measuring: AtomicBool,
    /// Set when the run is over: cores stop sending and return.
    pub stop: AtomicBool,
    /// Messages produced or consumed while measuring.
    pub messages: AtomicU64,
    /// Their value bytes.
    pub bytes: AtomicU64,
    /// Messages of the whole run, warm-up included.
    pub messages_whole_run: AtomicU64,
    /// Records refused or timed out.
    pub errors: AtomicU64,
    /// Why a core gave up (it could not reach the broker, say).
    pub failure: Mutex<Option<String>>,
    samples: Mutex<Sender<Samples>>,
}

impl Progress {
    /// Shared state and the receiving end of the samples.
    pub fn new() -> (Progress, Receiver<Samples>) {
        let (sender, receiver) = std::sync::mpsc::channel();
        (
            Progress {
                measuring: AtomicBool::new(false),
                stop: AtomicBool::new(false),
                messages: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                messages_whole_run: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                failure: Mutex::new(None),
                samples: Mutex::new(sender),
            },
            receiver,
        )
    }

    /// Whether work done now counts.
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Whether the run is over.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Counts `messages` of `bytes` done now.
    pub fn count(&self, messages: u64, bytes: u64) {
        self.messages_whole_run
            .fetch_add(messages, Ordering::Relaxed);
        if self.measuring() {
            self.messages.fetch_add(messages, Ordering::Relaxed);
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Ends the run because a core cannot go on.
    pub fn fail(&self, why: String) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(why);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Why the run failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Hands a core's samples to the main thread.
    pub fn hand_over(&self, samples: Samples) {
        // The receiver lives until the run ends; a send after that is moot.
        if let Ok(sender) = self.samples.lock() {
            let _ = sender.send(samples);
        }
    }
}
