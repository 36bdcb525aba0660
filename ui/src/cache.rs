//! One keyed cache for every backend resource the console shows.
//!
//! A [`Resource`] is a key (`"queue.jobs"`), its route and how long an answer stays fresh; a
//! [`Res<T>`] is the same key tied to the type its answer parses into. Tabs declare the
//! resources they need as `Res` constants in their own file, so a new resource is one
//! constant, not a new field, enum variant and five match arms. Answers are parsed once, on
//! arrival, into the typed value ([`View`]); the draw path only downcasts.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::client::ClientError;

/// Retry delay cap while the backend is failing.
pub const MAX_BACKOFF_SECS: i64 = 30;
/// How often a route that answered "not installed" / "module disabled" is asked again.
pub const ABSENT_RECHECK_SECS: i64 = 60;

/// 1, 2, 4, 8, 16, 30, 30, … seconds.
pub fn backoff_secs(failures: u32) -> i64 {
    let exp = failures.saturating_sub(1).min(10);
    (1i64 << exp).min(MAX_BACKOFF_SECS)
}

/// A type an answer parses into. Backend serde types implement it by deserialising
/// (`serde_view!`); console-side views compute what the draw path needs once.
pub trait View: Any + Sized {
    fn from_json(v: Value) -> Result<Self, String>;
}

/// Implements [`View`] for serde types: the answer must deserialise, or it is an error the
/// operator sees (never a silent default).
#[macro_export]
macro_rules! serde_view {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::cache::View for $t {
            fn from_json(v: serde_json::Value) -> Result<Self, String> {
                serde_json::from_value(v).map_err(|e| e.to_string())
            }
        }
    )*};
}

type Parser = fn(Value) -> Result<Box<dyn Any>, String>;

fn parse_any<T: View>(v: Value) -> Result<Box<dyn Any>, String> {
    T::from_json(v).map(|t| Box::new(t) as Box<dyn Any>)
}

/// An untyped resource key. Equality and hashing use `key` only.
#[derive(Clone, Copy)]
pub struct Resource {
    /// Stable name, e.g. `queue.jobs`.
    pub key: &'static str,
    /// Base route (a tab may add query parameters, see `Tab::path`).
    pub route: &'static str,
    /// How long a good answer stays fresh before it is fetched again.
    pub refresh_secs: i64,
    parse: Parser,
}

impl Resource {
    pub fn parse(&self, v: Value) -> Result<Box<dyn Any>, String> {
        (self.parse)(v)
    }
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Resource {}
impl std::hash::Hash for Resource {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}
impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resource({})", self.key)
    }
}

/// A resource whose answer parses into `T`.
pub struct Res<T> {
    pub res: Resource,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Res<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Res<T> {}

impl<T: View> Res<T> {
    pub const fn new(key: &'static str, route: &'static str, refresh_secs: i64) -> Res<T> {
        Res {
            res: Resource {
                key,
                route,
                refresh_secs,
                parse: parse_any::<T>,
            },
            _t: PhantomData,
        }
    }
}

/// The last good copy of one backend resource plus its fetch bookkeeping.
#[derive(Debug)]
pub struct Remote<T> {
    pub data: Option<T>,
    /// When `data` was received.
    pub updated_at: Option<DateTime<Utc>>,
    /// The last failure (cleared by the next success).
    pub error: Option<ClientError>,
    pub in_flight: bool,
    pub failures: u32,
    /// When to fetch next; `None` means now.
    pub next_due: Option<DateTime<Utc>>,
    /// The exact path of the request in flight (to drop answers to a superseded filter).
    pub requested: Option<String>,
}

impl<T> Default for Remote<T> {
    fn default() -> Self {
        Remote {
            data: None,
            updated_at: None,
            error: None,
            in_flight: false,
            failures: 0,
            next_due: None,
            requested: None,
        }
    }
}

impl<T> Remote<T> {
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        !self.in_flight && self.next_due.is_none_or(|d| now >= d)
    }

    /// True when data is shown but the latest attempt failed.
    pub fn is_stale(&self) -> bool {
        self.data.is_some() && self.error.is_some()
    }

    /// The module-disabled answer, if that is what the route said last.
    pub fn disabled(&self) -> Option<crate::client::Disabled> {
        self.error.as_ref().and_then(ClientError::disabled)
    }

    /// Same bookkeeping, data borrowed as `U` (a typed view of the cache's boxed value).
    fn map_ref<U>(&self, data: Option<U>) -> Remote<U> {
        Remote {
            data,
            updated_at: self.updated_at,
            error: self.error.clone(),
            in_flight: self.in_flight,
            failures: self.failures,
            next_due: self.next_due,
            requested: self.requested.clone(),
        }
    }
}

type Entry = Remote<Box<dyn Any>>;

/// Every resource the console has asked for, by key.
pub struct Cache {
    entries: HashMap<&'static str, Entry>,
    /// Refresh intervals are each resource's own times this (`+` / `-` in the console).
    pub refresh_scale: i64,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            entries: HashMap::new(),
            refresh_scale: 1,
        }
    }
}

impl Cache {
    /// Bookkeeping of `r` (an empty entry if it was never asked for).
    pub fn meta(&self, r: Resource) -> Remote<()> {
        match self.entries.get(r.key) {
            Some(e) => e.map_ref(e.data.as_ref().map(|_| ())),
            None => Remote::default(),
        }
    }

    pub fn entry_mut(&mut self, r: Resource) -> &mut Remote<Box<dyn Any>> {
        self.entries.entry(r.key).or_default()
    }

    /// The parsed data of `r`.
    pub fn get<T: View>(&self, r: Res<T>) -> Option<&T> {
        self.entries
            .get(r.res.key)?
            .data
            .as_ref()?
            .downcast_ref::<T>()
    }

    /// The data and bookkeeping of `r`, typed.
    pub fn remote<T: View>(&self, r: Res<T>) -> Remote<&T> {
        match self.entries.get(r.res.key) {
            Some(e) => e.map_ref(e.data.as_ref().and_then(|d| d.downcast_ref::<T>())),
            None => Remote::default(),
        }
    }

    pub fn is_due(&self, r: Resource, now: DateTime<Utc>) -> bool {
        self.entries.get(r.key).is_none_or(|e| e.due(now))
    }

    /// Newest time any resource answered successfully.
    pub fn last_ok(&self) -> Option<DateTime<Utc>> {
        self.entries.values().filter_map(|e| e.updated_at).max()
    }

    /// Whether anything was ever received.
    pub fn has_any_data(&self) -> bool {
        self.entries.values().any(|e| e.data.is_some())
    }

    /// Drops what is known of `r` (its data belonged to another request).
    pub fn forget(&mut self, r: Resource) {
        self.entries.remove(r.key);
    }

    /// Drops every entry except `keep` (tenant switch: no data of the old tenant may show).
    pub fn retain_only(&mut self, keep: &[Resource]) {
        self.entries.retain(|k, _| keep.iter().any(|r| r.key == *k));
    }

    /// Stores an answer; returns whether data changed.
    pub fn apply(
        &mut self,
        r: Resource,
        result: Result<Value, ClientError>,
        at: DateTime<Utc>,
    ) -> bool {
        let scale = self.refresh_scale.max(1);
        let e = self.entry_mut(r);
        e.in_flight = false;
        e.requested = None;
        let parsed = match result {
            Ok(v) => r.parse(v).map_err(ClientError::Decode),
            Err(e) => Err(e),
        };
        match parsed {
            Ok(v) => {
                e.data = Some(v);
                e.updated_at = Some(at);
                e.error = None;
                e.failures = 0;
                e.next_due = Some(at + Duration::seconds(r.refresh_secs * scale));
                true
            }
            Err(err) => {
                if err.status() == Some(404) {
                    // An answer, not an outage: the route is not installed here, or its module
                    // is disabled for this tenant. Nothing to show; check again rarely.
                    e.data = None;
                    e.failures = 0;
                    e.next_due = Some(at + Duration::seconds(ABSENT_RECHECK_SECS));
                } else {
                    e.failures = e.failures.saturating_add(1);
                    e.next_due = Some(at + Duration::seconds(backoff_secs(e.failures)));
                }
                e.error = Some(err);
                false
            }
        }
    }
}
