//! A small least-recently-used map, for the ONNX Runtime sessions kept per model: a
//! session holds the model's weights (and on a GPU its memory), so only a few are kept.

/// At most `capacity` entries; inserting into a full cache drops the least recently used.
/// Lookups are linear: the cache holds a handful of models.
#[derive(Debug)]
pub struct LruCache<V> {
    capacity: usize,
    /// Least recently used first.
    entries: Vec<(String, V)>,
}

impl<V> LruCache<V> {
    /// A cache of `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The entry under `key`, which becomes the most recently used.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(index);
        self.entries.push(entry);
        self.entries.last_mut().map(|(_, v)| v)
    }

    /// Inserts (or replaces) `key` as the most recently used entry; returns the key of an
    /// entry dropped to make room.
    pub fn insert(&mut self, key: String, value: V) -> Option<String> {
        if let Some(index) = self.entries.iter().position(|(k, _)| *k == key) {
            self.entries.remove(index);
        }
        let evicted = if self.entries.len() >= self.capacity { Some(self.entries.remove(0).0) } else { None };
        self.entries.push((key, value));
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut cache = LruCache::new(2);
        assert_eq!(cache.insert("a".into(), 1), None);
        assert_eq!(cache.insert("b".into(), 2), None);
        assert_eq!(cache.get_mut("a"), Some(&mut 1));
        assert_eq!(cache.insert("c".into(), 3), Some("b".to_owned()));
        assert!(cache.contains("a") && cache.contains("c") && !cache.contains("b"));
        assert_eq!(cache.insert("c".into(), 4), None, "replacing does not evict");
        assert_eq!(cache.get_mut("c"), Some(&mut 4));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn capacity_is_at_least_one() {
        let mut cache = LruCache::new(0);
        assert_eq!(cache.insert("a".into(), 1), None);
        assert_eq!(cache.insert("b".into(), 2), Some("a".to_owned()));
        assert_eq!(cache.len(), 1);
    }
}
