//! The isolate's cache of configuration documents: a lookup is kept for a short time (found or not),
//! so KV stays off the hot path. A write through the admin API evicts the entry in its own
//! isolate at once; other isolates see it within the TTL (plus KV's own propagation). Bounded: a
//! full cache drops what has expired, and everything if that is not enough.

use std::collections::HashMap;

pub struct TtlCache<V> {
    entries: HashMap<String, (u64, V)>,
    ttl_ms: u64,
    max: usize,
}

impl<V> TtlCache<V> {
    pub fn new(ttl_ms: u64, max: usize) -> Self {
        TtlCache {
            entries: HashMap::new(),
            ttl_ms,
            max,
        }
    }

    pub fn get(&self, key: &str, now: u64) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, v)| v)
    }

    pub fn put(&mut self, key: &str, value: V, now: u64) {
        if self.entries.len() >= self.max {
            self.entries.retain(|_, (expires, _)| *expires > now);
            if self.entries.len() >= self.max {
                self.entries.clear();
            }
        }
        self.entries
            .insert(key.to_string(), (now + self.ttl_ms, value));
    }

    /// Entries held, expired ones included until a full cache drops them.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn evict(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Evicts every entry whose key `stale` says is out of date.
    pub fn evict_where(&mut self, stale: impl Fn(&str) -> bool) {
        self.entries.retain(|k, _| !stale(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_for_the_ttl_and_can_be_evicted() {
        let mut c = TtlCache::new(100, 10);
        c.put("a", 1, 1_000);
        assert_eq!(c.get("a", 1_099), Some(&1));
        assert_eq!(c.get("a", 1_100), None);
        c.put("b", 2, 1_000);
        c.evict("b");
        assert_eq!(c.get("b", 1_001), None);
    }

    #[test]
    fn a_full_cache_drops_the_expired_first_then_everything() {
        let mut c = TtlCache::new(100, 2);
        c.put("old", 1, 0);
        c.put("live", 2, 150);
        c.put("new", 3, 160);
        assert_eq!((c.get("old", 160), c.get("live", 160)), (None, Some(&2)));
        c.put("newer", 4, 170);
        assert_eq!(c.get("live", 170), None, "still full: cleared");
        assert_eq!(c.get("newer", 170), Some(&4));
    }
}
