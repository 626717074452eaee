//! One cache for everything worked out from stored data (KPI reports, rendered pages,
//! aggregate answers, the facts held for them): each value is kept under a key saying what it
//! is and what it was worked out for ([`cache_key`]), with the data version it came from, so a
//! new version of the data makes it stale. Bounded: a full cache starts again.

use crest_core::Period;
use std::sync::Arc;

/// The key of a cached value: what it is (`kpis`, `dashboard`, `aggregate`, …), whose data
/// (a programme's code, `national`, a region), its period if it has one, and anything else it
/// depends on (a method, filters).
pub(crate) fn cache_key(what: &str, scope: &str, period: Option<Period>, detail: &str) -> String {
    match period {
        Some(p) => format!("{what}|{scope}|{}|{}|{detail}", p.from, p.to),
        None => format!("{what}|{scope}||{detail}"),
    }
}

/// Rendered national pages by key, each kept while the national data are at its version.
pub(crate) type PageCache = VersionCache<maud::Markup>;

/// Values worked out from the national store, by key, each kept while the national data are at
/// the version it was worked out from (at most 256: the oldest are dropped all at once).
pub(crate) struct VersionCache<T>(
    std::sync::Mutex<std::collections::HashMap<String, (String, Arc<T>)>>,
    /// The keys being worked out now, each with the lock its builder holds (see
    /// [`VersionCache::get_or_build`]).
    std::sync::Mutex<std::collections::HashMap<String, Arc<std::sync::Mutex<()>>>>,
);

impl<T> Default for VersionCache<T> {
    fn default() -> Self {
        VersionCache(Default::default(), Default::default())
    }
}

impl<T> VersionCache<T> {
    /// The value for `key` at `version`, worked out by `build` only if it is not kept. Requests
    /// for the same key at once wait for the first one's answer instead of each working it out:
    /// 32 clients opening a cold national dashboard on a fresh server computed it 16 times
    /// over, on two cores, and timed out.
    pub(crate) fn get_or_build<E>(
        &self,
        key: String,
        version: &str,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some(v) = self.get(&key, version) {
            return Ok(v);
        }
        let turn = {
            let mut building = self.1.lock().unwrap_or_else(|e| e.into_inner());
            building.entry(key.clone()).or_default().clone()
        };
        let _mine = turn.lock().unwrap_or_else(|e| e.into_inner());
        // Built while this one waited?
        let out = match self.get(&key, version) {
            Some(v) => Ok(v),
            None => build().map(|v| {
                let v = Arc::new(v);
                self.put(key.clone(), version.to_string(), v.clone());
                v
            }),
        };
        let mut building = self.1.lock().unwrap_or_else(|e| e.into_inner());
        // The last one out (this one and the map hold it) clears the key.
        if building
            .get(&key)
            .is_some_and(|t| Arc::strong_count(t) <= 2)
        {
            building.remove(&key);
        }
        out
    }

    pub(crate) fn get(&self, key: &str, version: &str) -> Option<Arc<T>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key)
            .filter(|(v, _)| v == version)
            .map(|(_, b)| b.clone())
    }

    pub(crate) fn put(&self, key: String, version: String, body: Arc<T>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= 256 && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, (version, body));
    }
}

/// The national KPI report of a period with the programmes it covers.
pub(crate) struct NationalReport {
    pub programmes: Vec<crest_core::Programme>,
    pub report: crest_stats::KpiReport,
    /// Referrals and starts against the expected patients of the period's quarters.
    pub ascertainment: crest_stats::ascertainment::Ascertainment,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_value_asked_for_at_once_is_worked_out_once() {
        let cache: VersionCache<usize> = VersionCache::default();
        let builds = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    let v = cache
                        .get_or_build("dashboard|national".into(), "v1", || {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok::<_, ()>(42)
                        })
                        .unwrap();
                    assert_eq!(*v, 42);
                });
            }
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        // A new version of the data is worked out again; a failure is not kept.
        let again = cache.get_or_build("dashboard|national".into(), "v2", || Ok::<_, ()>(7));
        assert_eq!(again.map(|v| *v), Ok(7));
        let failed = cache.get_or_build("other".into(), "v2", || Err::<usize, _>("no"));
        assert_eq!(failed, Err("no"));
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(cache.1.lock().unwrap().is_empty());
    }
}
