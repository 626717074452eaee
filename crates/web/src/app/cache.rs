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
);

impl<T> Default for VersionCache<T> {
    fn default() -> Self {
        VersionCache(Default::default())
    }
}

impl<T> VersionCache<T> {
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
