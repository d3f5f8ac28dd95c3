//! dnscache's cache: a fixed memory budget (CACHESIZE bytes, clamped to
//! djbdns' bounds) of keyed entries with expiry times. Like djbdns' cache the
//! oldest entries make room for new ones (first in, first out), so memory
//! never grows past the budget whatever clients ask; `motion` counts the
//! bytes written, as the `stats` log line reports.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// djbdns' bounds on CACHESIZE.
pub const MIN_SIZE: u64 = 100;
pub const MAX_SIZE: u64 = 1_000_000_000;
/// Longest a record is kept, whatever its TTL says (one week).
pub const MAX_TTL: u32 = 604_800;
/// Keys and values larger than these are not cached (as djbdns).
const MAX_KEY: usize = 1000;
const MAX_DATA: usize = 1_000_000;
/// Bookkeeping bytes charged per entry on top of key and data.
const OVERHEAD: usize = 64;

struct Entry {
    data: Vec<u8>,
    expires: Instant,
    /// Which insertion this is, to tell a stale queue slot from the live one.
    serial: u64,
}

/// The cache. Keys are opaque bytes (dnscache uses type + wire name).
pub struct Cache {
    budget: usize,
    used: usize,
    map: HashMap<Vec<u8>, Entry>,
    order: VecDeque<(Vec<u8>, u64)>,
    serial: u64,
    /// Bytes of keys and data written so far.
    pub motion: u64,
}

impl Cache {
    /// A cache of `size` bytes, clamped to [MIN_SIZE, MAX_SIZE].
    pub fn new(size: u64) -> Cache {
        Cache {
            budget: size.clamp(MIN_SIZE, MAX_SIZE) as usize,
            used: 0,
            map: HashMap::new(),
            order: VecDeque::new(),
            serial: 0,
            motion: 0,
        }
    }

    /// Bytes charged to the entries now cached (never above the budget).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Store `data` under `key` for `ttl` seconds (capped at a week); a zero
    /// TTL or an oversized entry is not stored.
    pub fn set(&mut self, key: &[u8], data: &[u8], ttl: u32, now: Instant) {
        if ttl == 0 || key.len() > MAX_KEY || data.len() > MAX_DATA {
            return;
        }
        let cost = key.len() + data.len() + OVERHEAD;
        if cost > self.budget {
            return;
        }
        self.remove(key);
        while self.used + cost > self.budget {
            if !self.evict_oldest() {
                break;
            }
        }
        self.serial += 1;
        let expires = now + Duration::from_secs(u64::from(ttl.min(MAX_TTL)));
        self.map.insert(
            key.to_vec(),
            Entry {
                data: data.to_vec(),
                expires,
                serial: self.serial,
            },
        );
        self.order.push_back((key.to_vec(), self.serial));
        self.used += cost;
        if self.order.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.serial == *s));
        }
        self.motion += (key.len() + data.len()) as u64;
    }

    /// The data under `key` and its remaining TTL in seconds, if live.
    pub fn get(&self, key: &[u8], now: Instant) -> Option<(&[u8], u32)> {
        let e = self.map.get(key)?;
        if e.expires <= now {
            return None;
        }
        let left = e.expires.duration_since(now).as_secs() as u32;
        Some((&e.data, left))
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(e) = self.map.remove(key) {
            self.used -= key.len() + e.data.len() + OVERHEAD;
        }
    }

    /// Drop the oldest live entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, serial)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.serial == serial) {
                self.remove(&key);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_ttl_cap() {
        let mut c = Cache::new(10_000);
        let t = Instant::now();
        c.set(b"k", b"v", 10, t);
        assert_eq!(c.get(b"k", t), Some((&b"v"[..], 10)));
        assert_eq!(c.get(b"k", t + Duration::from_secs(10)), None);
        c.set(b"w", b"v", u32::MAX, t);
        assert_eq!(c.get(b"w", t).unwrap().1, MAX_TTL);
        c.set(b"z", b"v", 0, t);
        assert!(c.get(b"z", t).is_none());
    }

    #[test]
    fn budget_holds_and_oldest_go_first() {
        let mut c = Cache::new(1000);
        let t = Instant::now();
        for i in 0..10_000u32 {
            let key = format!("key{i}");
            c.set(key.as_bytes(), &[0u8; 50], 100, t);
            assert!(c.used() <= 1000);
        }
        assert!(c.get(b"key9999", t).is_some());
        assert!(c.get(b"key0", t).is_none());
        assert!(c.map.len() < 10 && c.order.len() < 10_000);
        assert!(c.motion > 10_000 * 50);
        c.set(b"key9999", &[1u8; 10], 100, t);
        assert_eq!(c.get(b"key9999", t).unwrap().0, &[1u8; 10]);
        assert_eq!(Cache::new(0).budget, 100);
        for _ in 0..1000 {
            c.set(b"same", b"x", 100, t);
        }
        assert!(
            c.order.len() <= 2 * c.map.len() + 16,
            "no growth from rewrites"
        );
    }
}
