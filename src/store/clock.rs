//! The time leases, heartbeats, retry delays and recovery are measured on.
//!
//! Product code runs on [`SystemClock`]. Tests inject their own clock (the trait is the seam),
//! so a test of lease expiry moves time forward instead of sleeping through a lease.

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
