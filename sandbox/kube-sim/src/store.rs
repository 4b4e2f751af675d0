//! The in-memory object store and its watch event log.
//!
//! Owns every stored object (keyed by group, resource, namespace, name), the global
//! `resourceVersion` counter, and the bounded log of ADDED/MODIFIED/DELETED events that
//! watches replay from and are fed by (a tokio broadcast channel).
//!
//! Rules kept here:
//! - `resourceVersion` is one global counter, increasing by one on every stored write and every
//!   deletion; the stored object carries the version of its last write as a decimal string.
//! - Every write and deletion produces exactly one event carrying that version.
//! - A watch may resume from any version still in the log window; older versions are Gone.
//! - The store validates nothing: callers (the `ops` module) keep the API rules.

use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events kept for watches resuming from an older resourceVersion.
const LOG_CAPACITY: usize = 20_000;

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub group: String,
    pub resource: String,
    /// "" for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        ObjKey {
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: ObjKey,
    pub object: Value,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: BTreeMap<ObjKey, Value>,
    log: VecDeque<Arc<Event>>,
    /// Versions at or below this one are no longer in the log.
    log_floor: u64,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(8192);
        Store {
            rv: 1,
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            log_floor: 1,
            tx,
        }
    }

    /// The latest resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Store `obj` under a new resourceVersion and emit an event. Returns the stored object.
    pub fn put(&mut self, key: ObjKey, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let kind = if self.objects.contains_key(&key) {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.objects.insert(key.clone(), obj.clone());
        self.emit(kind, key, obj.clone());
        obj
    }

    /// Remove an object under a new resourceVersion and emit DELETED. Returns the last state.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit(EventType::Deleted, key.clone(), obj.clone());
        Some(obj)
    }

    fn emit(&mut self, kind: EventType, key: ObjKey, object: Value) {
        let ev = Arc::new(Event {
            rv: self.rv,
            kind,
            key,
            object,
        });
        self.log.push_back(ev.clone());
        while self.log.len() > LOG_CAPACITY {
            if let Some(old) = self.log.pop_front() {
                self.log_floor = old.rv;
            }
        }
        let _ = self.tx.send(ev);
    }

    /// Objects of one resource, optionally in one namespace, in key order.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        let start = ObjKey::new(group, resource, namespace.unwrap_or(""), "");
        self.objects.range(start..).take_while(move |(k, _)| {
            k.group == group && k.resource == resource && namespace.is_none_or(|n| k.namespace == n)
        })
    }

    /// Every key (for controllers).
    pub fn keys(&self) -> Vec<ObjKey> {
        self.objects.keys().cloned().collect()
    }

    /// Keys of every object in a namespace (any resource).
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<ObjKey> {
        self.objects
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect()
    }

    /// Events after `rv`, or None if that version has left the log window.
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        if rv < self.log_floor && rv < self.rv {
            return None;
        }
        // The log is in resourceVersion order: start at the first event after `rv`.
        let start = self.log.partition_point(|e| e.rv <= rv);
        Some(self.log.range(start..).cloned().collect())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Drop every object (the resourceVersion keeps increasing).
    pub fn clear(&mut self) {
        self.objects.clear();
        self.log.clear();
        self.log_floor = self.rv;
    }
}
