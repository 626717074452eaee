//! Uptake by group (sex, age band, ethnic group, deprivation, priority group): the counts
//! behind every inequality table, programme, national and published alike.

use std::collections::BTreeMap;

/// One group's uptake: (group, referred, started).
pub type GroupUptake = (String, u64, u64);

/// Referred and started by group, in group order: `key` names an item's group and `started`
/// says whether it started core rehabilitation.
pub fn uptake_by<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> String,
    started: impl Fn(&T) -> bool,
) -> Vec<GroupUptake> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for item in items {
        let e = m.entry(key(&item)).or_default();
        e.0 += 1;
        e.1 += u64::from(started(&item));
    }
    m.into_iter().map(|(g, (n, k))| (g, n, k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_referred_and_started_per_group_in_order() {
        let items = [
            ("b", true),
            ("a", false),
            ("b", false),
            ("a", true),
            ("a", true),
        ];
        let got = uptake_by(items, |x| x.0.to_string(), |x| x.1);
        assert_eq!(got, [("a".to_string(), 3, 2), ("b".to_string(), 2, 1)]);
    }
}
