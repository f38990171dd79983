//! A stopwatch for the pools' histograms: it reads the clock only with the `metrics`
//! feature, and is free (zero-sized, no clock read) without it.

use std::time::Duration;

/// Measures a duration for a histogram; free without the `metrics` feature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch(#[cfg(feature = "metrics")] std::time::Instant);

impl Stopwatch {
    #[inline]
    pub(crate) fn start() -> Self {
        Stopwatch(
            #[cfg(feature = "metrics")]
            std::time::Instant::now(),
        )
    }

    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn elapsed(&self) -> Duration {
        #[cfg(feature = "metrics")]
        {
            self.0.elapsed()
        }
        #[cfg(not(feature = "metrics"))]
        {
            Duration::ZERO
        }
    }
}
