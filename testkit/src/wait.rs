//! Bounded waits: poll a condition instead of sleeping a fixed time, and give
//! up at a deadline, so a loaded machine slows a test down without failing it
//! and a broken program fails it without hanging it.

use std::time::{Duration, Instant};

/// Generous bound for anything expected to happen "soon" on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Poll `f` every 10 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Poll `f` until it yields a value or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let mut out = None;
    wait_until(limit, || {
        out = f();
        out.is_some()
    });
    out
}
