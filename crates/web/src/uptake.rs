//! Uptake by group as tables: the lead's dashboard, the national programme page and the
//! inequalities page show one table per grouping (sex, age band, ethnic group, deprivation,
//! priority group), and download them as one file with a `grouping` column.

use crate::app::table::{Cell, Column, Table};
use crate::html::{group_words, pct};
use crest_core::{Col, KpiEpisode, Record};
use crest_stats::inequality::GroupUptake;

/// The groupings of a programme's patients, in the order pages show them.
pub(crate) const GROUPINGS: [&str; 5] = [
    "sex",
    "age band",
    "ethnic group",
    "deprivation quintile (1 = most deprived)",
    "priority group",
];

/// The deprivation grouping's place in [`GROUPINGS`] (its groups are the quintiles 1–5).
pub(crate) const DEPRIVATION: usize = 3;

/// An episode's group in each of [`GROUPINGS`].
pub(crate) fn groups_of(r: &Record) -> Vec<String> {
    let age = match r.get(Col::AgeAtEvent) {
        crest_core::Value::Int(a) => Some(*a),
        _ => None,
    };
    let quintile = r.get(Col::ImdQuintile).to_text();
    vec![
        Col::Sex.field().display(r.get(Col::Sex)).to_string(),
        crest_core::age_band(age).to_string(),
        // The broad groups of core, as on the national pages.
        crest_core::ethnic_group(r.text(Col::Ethnicity)).to_string(),
        if quintile.is_empty() {
            "Not known".into()
        } else {
            quintile
        },
        KpiEpisode::of_record(r, 0)
            .map_or("Not known", |f| f.group.label())
            .to_string(),
    ]
}

/// A national episode's group in each of [`GROUPINGS`], as the national pages name them.
pub(crate) fn groups_of_fact(f: &crest_store::national::EquityFact) -> Vec<String> {
    vec![
        f.sex.clone().unwrap_or_else(|| "not known".into()),
        crest_core::age_band(f.age).to_string(),
        crest_core::ethnic_group(f.ethnicity.as_deref()).to_string(),
        f.imd_quintile.map_or("not known".into(), |q| q.to_string()),
        f.group.label().to_string(),
    ]
}

/// Referred and started by group in each of [`GROUPINGS`], ages youngest first.
pub(crate) fn by_group(records: &[Record]) -> Vec<(&'static str, Vec<GroupUptake>)> {
    let keys: Vec<(Vec<String>, bool)> = records
        .iter()
        .map(|r| (groups_of(r), r.date(Col::CoreStartDate).is_some()))
        .collect();
    GROUPINGS
        .iter()
        .enumerate()
        .map(|(i, title)| {
            let mut rows =
                crest_stats::inequality::uptake_by(&keys, |(g, _)| g[i].clone(), |(_, s)| *s);
            if i == 1 {
                let order = ["<50", "50-59", "60-69", "70-79", "80+"];
                rows.sort_by_key(|b| order.iter().position(|o| *o == b.0).unwrap_or(order.len()));
            }
            (*title, rows)
        })
        .collect()
}

/// Uptake by one grouping: (group, referred, started) rows, with Wilson 95% intervals.
pub(crate) fn uptake_table(title: &str, rows: &[(String, u64, u64)]) -> Table {
    Table {
        caption: format!("Uptake by {title}"),
        rows_are: "groups".into(),
        columns: vec![
            Column::words("Group", "group"),
            Column::numbers("Referred", "referred"),
            Column::numbers("Started", "started"),
            Column::numbers("Uptake", "uptake"),
            Column::words("95% interval", "interval").page_only(),
            Column::file_only("ci_low"),
            Column::file_only("ci_high"),
        ],
        rows: rows
            .iter()
            .map(|(g, n, k)| {
                let interval = crest_stats::summary::wilson(*k, *n, crest_stats::Z95);
                vec![
                    Cell::coded(group_words(g), g.clone()),
                    Cell::count(*n),
                    Cell::count(*k),
                    Cell::proportion((*n > 0).then(|| *k as f64 / *n as f64)),
                    Cell::text(interval.map_or("–".into(), |(lo, hi)| {
                        format!("{}–{}", pct(Some(lo)), pct(Some(hi)))
                    })),
                    Cell::proportion(interval.map(|c| c.0)),
                    Cell::proportion(interval.map(|c| c.1)),
                ]
            })
            .collect(),
        downloads: None,
        empty: "Nobody was referred.".into(),
    }
}

/// Every grouping's table, in order.
pub(crate) fn uptake_tables<'a>(
    groups: impl IntoIterator<Item = (&'a str, &'a [(String, u64, u64)])>,
) -> Vec<(String, Table)> {
    groups
        .into_iter()
        .map(|(title, rows)| (title.to_string(), uptake_table(title, rows)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A group's name comes from uploaded data: it is text wherever the table shows it.
    #[test]
    fn group_names_and_titles_are_text() {
        const HOSTILE: &str = "<script>alert('x')</script>\"><img src=x>&";
        let t = uptake_table(HOSTILE, &[(HOSTILE.to_string(), 3, 1)]);
        let html = t
            .render(&crate::app::table::View::of("u", "/p", &HashMap::new()))
            .into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        let (columns, rows) = t.file();
        assert_eq!(
            columns,
            ["group", "referred", "started", "uptake", "ci_low", "ci_high"]
        );
        assert_eq!(rows[0][..4], [HOSTILE, "3", "1", "0.3333"]);
    }
}
