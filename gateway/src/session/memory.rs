//! The `memory` store: one process, lost on restart. A sharded map, so loads on different
//! sessions never contend on one lock.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use super::{Record, SessionId, now_ms};

/// Expired sessions are swept every this many creations.
const SWEEP_EVERY: u64 = 1024;

pub(super) struct MemoryStore {
    map: DashMap<SessionId, (Record, u64)>,
    creations: AtomicU64,
}

impl MemoryStore {
    pub(super) fn new() -> Self {
        MemoryStore {
            map: DashMap::new(),
            creations: AtomicU64::new(0),
        }
    }

    pub(super) fn insert(&self, id: SessionId, record: Record, expires: u64) {
        if self.creations.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(now_ms());
        }
        self.map.insert(id, (record, expires));
    }

    /// The record of `id` unless it has expired by `now` (then it is removed).
    pub(super) fn get(&self, id: &SessionId, now: u64) -> Option<Record> {
        let expired = {
            let entry = self.map.get(id)?;
            if entry.1 > now {
                return Some(entry.0.clone());
            }
            true
        };
        if expired {
            self.map.remove_if(id, |_, (_, exp)| *exp <= now);
        }
        None
    }

    /// Replaces the record of `id` if it still exists (never resurrects a destroyed session).
    pub(super) fn update(&self, id: &SessionId, record: Record, expires: u64) {
        if let Some(mut entry) = self.map.get_mut(id) {
            *entry = (record, expires);
        }
    }

    pub(super) fn remove(&self, id: &SessionId) {
        self.map.remove(id);
    }

    /// Drops every session expired by `now`.
    pub(super) fn sweep(&self, now: u64) {
        self.map.retain(|_, (_, exp)| *exp > now);
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
