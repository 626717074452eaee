//! One model of a table shown to people: a caption, columns, and rows of cells that hold both
//! the words a page shows and the exact value a download keeps. On a page the table is
//! searched, sorted by any column and paged, all by links and a plain form (no script), so a
//! long table (230 programmes, hundreds of findings) stays short; its downloads hold every
//! row with exact values.

use crate::html::url_encode;
use maud::{html, Markup};
use std::collections::BTreeMap;

/// Rows on a page.
pub(crate) const PER_PAGE: usize = 50;

/// A column: its heading on the page and its name in a downloaded file.
#[derive(Clone)]
pub(crate) struct Column {
    /// The heading people read.
    pub heading: String,
    /// The column's name in a CSV or XLSX file.
    pub file: String,
    /// Numbers sort by value (empty cells last) and align right.
    pub numeric: bool,
    /// Where the column appears: on the page, in files, or both.
    pub shown_in: ShownIn,
}

/// Where a column appears. A file keeps exact columns a page leaves out (a code beside the
/// name the page links, the method behind a level); a page may hold a control no file needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ShownIn {
    /// On the page and in files.
    Both,
    /// Only in downloaded files.
    FileOnly,
    /// Only on the page.
    PageOnly,
}

impl Column {
    /// A column of words.
    pub fn words(heading: &str, file: &str) -> Column {
        Column {
            heading: heading.to_string(),
            file: file.to_string(),
            numeric: false,
            shown_in: ShownIn::Both,
        }
    }

    /// A column of numbers.
    pub fn numbers(heading: &str, file: &str) -> Column {
        Column {
            numeric: true,
            ..Column::words(heading, file)
        }
    }

    /// A column only files hold, named `file` (exact values people do not need on screen).
    pub fn file_only(file: &str) -> Column {
        Column {
            shown_in: ShownIn::FileOnly,
            ..Column::words(file, file)
        }
    }

    /// The same column, only on the page.
    pub fn page_only(self) -> Column {
        Column {
            shown_in: ShownIn::PageOnly,
            ..self
        }
    }

    fn on_page(&self) -> bool {
        self.shown_in != ShownIn::FileOnly
    }

    fn in_file(&self) -> bool {
        self.shown_in != ShownIn::PageOnly
    }
}

/// One cell: what the page shows, what a file holds, and where it links to.
#[derive(Clone)]
pub(crate) struct Cell {
    /// The words on the page.
    pub shown: String,
    /// The value in a downloaded file (exact: a proportion to four places, a code).
    pub exact: String,
    /// Its value as a number, for sorting.
    pub number: Option<f64>,
    /// A link from the cell.
    pub href: Option<String>,
    /// Shown in bold (a missing submission, an alarm).
    pub strong: bool,
    /// What the page shows instead of the words, where a cell holds a control (a button).
    pub markup: Option<Markup>,
    /// A style for the cell on the page ("met", "grade-red"), beside the words that say the same.
    pub class: Option<String>,
}

impl Cell {
    /// Words, the same on the page and in a file.
    pub fn text(s: impl Into<String>) -> Cell {
        let s = s.into();
        Cell {
            exact: s.clone(),
            shown: s,
            number: None,
            href: None,
            strong: false,
            markup: None,
            class: None,
        }
    }

    /// A number shown one way and kept exactly another.
    pub fn number(value: Option<f64>, shown: impl Into<String>, exact: impl Into<String>) -> Cell {
        Cell {
            shown: shown.into(),
            exact: exact.into(),
            number: value,
            href: None,
            strong: false,
            markup: None,
            class: None,
        }
    }

    /// Words on the page, a different value (a code) in a file.
    pub fn coded(shown: impl Into<String>, exact: impl Into<String>) -> Cell {
        Cell {
            exact: exact.into(),
            ..Cell::text(shown)
        }
    }

    /// The same cell, linking to `href`.
    pub fn link(self, href: impl Into<String>) -> Cell {
        Cell {
            href: Some(href.into()),
            ..self
        }
    }

    /// The same cell, shown on the page as `markup` (its words still sort, search and download).
    pub fn control(self, markup: Markup) -> Cell {
        Cell {
            markup: Some(markup),
            ..self
        }
    }

    /// The same cell, in bold.
    pub fn strong(self, strong: bool) -> Cell {
        Cell { strong, ..self }
    }

    /// The same cell, styled with `class` on the page.
    pub fn class(self, class: impl Into<String>) -> Cell {
        Cell {
            class: Some(class.into()),
            ..self
        }
    }

    /// A count, shown with thousands separators.
    pub fn count(n: u64) -> Cell {
        Cell::number(Some(n as f64), crate::html::thousands(n), n.to_string())
    }

    /// A proportion: a percentage on the page, four places in a file, empty without one.
    pub fn proportion(value: Option<f64>) -> Cell {
        Cell::number(
            value,
            crate::html::pct(value),
            value.map_or(String::new(), |v| format!("{v:.4}")),
        )
    }
}

/// A table: its caption, columns and rows, and the addresses of its downloads.
pub(crate) struct Table {
    /// What the table shows.
    pub caption: String,
    /// What one row is, in the plural ("programmes"), for "Showing 1 to 50 of 230 programmes".
    pub rows_are: String,
    /// The columns; the first names the row.
    pub columns: Vec<Column>,
    /// The rows, in their default order.
    pub rows: Vec<Vec<Cell>>,
    /// Where the CSV and XLSX of every row are, if they can be downloaded.
    pub downloads: Option<[String; 2]>,
    /// What the page says instead of the table when it has no rows at all.
    pub empty: String,
}

/// How someone is looking at a table: searched for, sorted by, which page. Read from the
/// address, each parameter named after the table so that several tables share a page.
pub(crate) struct View {
    id: String,
    search: String,
    sort: Option<(usize, bool)>,
    page: usize,
    /// Every parameter of the address, to keep the page's other choices in links.
    query: BTreeMap<String, String>,
    path: String,
}

impl View {
    /// The view of the table `id` on the page at `path` with these query parameters.
    pub fn of(id: &str, path: &str, query: &std::collections::HashMap<String, String>) -> View {
        let get = |k: &str| query.get(&format!("{id}-{k}")).map(|v| v.trim());
        let sort = get("sort")
            .and_then(|s| s.parse::<usize>().ok())
            .map(|c| (c, get("order") == Some("descending")));
        View {
            id: id.to_string(),
            search: get("search").unwrap_or_default().to_string(),
            sort,
            page: get("page").and_then(|p| p.parse().ok()).unwrap_or(1),
            query: query
                .iter()
                .filter(|(k, _)| k.as_str() != "download")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            path: path.to_string(),
        }
    }

    /// Everything the rendered table depends on in the address (its own choices, and the
    /// page's others that its links keep), for a cache key.
    pub fn key(&self) -> String {
        let query: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        format!("{}#{}?{}", self.path, self.id, query.join("&"))
    }

    fn param(&self, k: &str) -> String {
        format!("{}-{k}", self.id)
    }

    /// This page's address with some of the table's parameters changed.
    fn href(&self, changes: &[(&str, Option<String>)]) -> String {
        let mut q = self.query.clone();
        for (k, v) in changes {
            match v {
                Some(v) => q.insert(self.param(k), v.clone()),
                None => q.remove(&self.param(k)),
            };
        }
        let query: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        format!("{}?{}#{}", self.path, query.join("&"), self.id)
    }
}

impl Table {
    /// The rows matching the view's search, in its order.
    fn chosen(&self, view: &View) -> Vec<&Vec<Cell>> {
        let needle = view.search.to_lowercase();
        let mut rows: Vec<&Vec<Cell>> = self
            .rows
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || r.iter().any(|c| {
                        c.shown.to_lowercase().contains(&needle)
                            || c.exact.to_lowercase().contains(&needle)
                    })
            })
            .collect();
        if let Some((col, descending)) = view.sort.filter(|(c, _)| *c < self.columns.len()) {
            let numeric = self.columns[col].numeric;
            // A stable sort: rows that tie keep their default order. Empty numbers go last
            // whichever way the column is sorted.
            rows.sort_by(|a, b| {
                let (x, y) = (&a[col], &b[col]);
                let order = if numeric {
                    match (x.number, y.number) {
                        (Some(p), Some(q)) => p.total_cmp(&q),
                        (Some(_), None) => return std::cmp::Ordering::Less,
                        (None, Some(_)) => return std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    }
                } else {
                    x.shown.to_lowercase().cmp(&y.shown.to_lowercase())
                };
                if descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        rows
    }

    /// The table on a page: a search box (when it has more than a page of rows), sortable
    /// headings, one page of rows, the pages and the downloads. A table that fits on one page
    /// does not count its rows (its caption or the page says how many).
    pub fn render(&self, view: &View) -> Markup {
        let rows = self.chosen(view);
        let pages = rows.len().div_ceil(PER_PAGE).max(1);
        let page = view.page.clamp(1, pages);
        let from = (page - 1) * PER_PAGE;
        let shown = &rows[from.min(rows.len())..(from + PER_PAGE).min(rows.len())];
        let searchable = self.rows.len() > PER_PAGE || !view.search.is_empty();
        let search_id = view.param("search");
        if self.rows.is_empty() {
            return html! { p id=(view.id) { (self.empty) } };
        }
        // The row's heading is the first column the page shows.
        let first = self.columns.iter().position(Column::on_page).unwrap_or(0);
        html! {
            @if searchable {
                form method="get" action={ (view.path) "#" (view.id) } class="noprint table-search" {
                    @for (k, v) in &view.query {
                        @if !k.starts_with(&format!("{}-", view.id)) {
                            input type="hidden" name=(k) value=(v);
                        }
                    }
                    label for=(search_id) { "Search the " (self.rows_are) }
                    input type="search" id=(search_id) name=(search_id) value=(view.search);
                    " "
                    button class="secondary" { "Search" }
                    @if !view.search.is_empty() {
                        " " a href=(view.href(&[("search", None), ("page", None)])) { "Show all" }
                    }
                }
            }
            table tabindex="0" id=(view.id) {
                caption { (self.caption) }
                thead { tr {
                    @for (i, c) in self.columns.iter().enumerate().filter(|(_, c)| c.on_page()) {
                        @let now = view.sort.filter(|s| s.0 == i).map(|s| s.1);
                        @let next = if now == Some(false) { "descending" } else { "ascending" };
                        th scope="col" aria-sort=[now.map(|d| if d { "descending" } else { "ascending" })] {
                            a href=(view.href(&[("sort", Some(i.to_string())), ("order", Some(next.to_string())), ("page", None)])) {
                                (c.heading)
                                span class="visually-hidden" { ", sort " (next) }
                            }
                            @match now {
                                Some(false) => " ▲",
                                Some(true) => " ▼",
                                None => "",
                            }
                        }
                    }
                } }
                tbody {
                    @for row in shown {
                        tr {
                            @for (i, cell) in row.iter().enumerate().filter(|(i, _)| self.columns.get(*i).is_none_or(Column::on_page)) {
                                @let inner = html! {
                                    @match (&cell.markup, &cell.href) {
                                        (Some(m), _) => (m),
                                        (None, Some(h)) => a href=(h) { (cell.shown) },
                                        (None, None) => (cell.shown),
                                    }
                                };
                                @let inner = if cell.strong { html! { strong { (inner) } } } else { inner };
                                @let numeric = self.columns.get(i).is_some_and(|c| c.numeric);
                                @let class = match (numeric, &cell.class) {
                                    (true, Some(c)) => Some(format!("num {c}")),
                                    (true, None) => Some("num".to_string()),
                                    (false, c) => c.clone(),
                                };
                                @if i == first {
                                    th scope="row" class=[class] { (inner) }
                                } @else {
                                    td class=[class] { (inner) }
                                }
                            }
                        }
                    }
                }
            }
            p class="pages" {
                @if rows.is_empty() {
                    "No " (self.rows_are) " match “" (view.search) "”. "
                } @else if pages > 1 || !view.search.is_empty() {
                    "Showing " (crate::html::thousands((from + 1) as u64)) " to "
                    (crate::html::thousands((from + shown.len()) as u64)) " of "
                    (crate::html::thousands(rows.len() as u64)) " " (self.rows_are)
                    @if !view.search.is_empty() { " matching “" (view.search) "”" }
                    ". "
                }
                @if page > 1 {
                    a href=(view.href(&[("page", Some((page - 1).to_string()))])) { "Previous page" } " "
                }
                @if pages > 1 { "Page " (page) " of " (pages) ". " }
                @if page < pages {
                    a href=(view.href(&[("page", Some((page + 1).to_string()))])) { "Next page" } " "
                }
                @if let Some([csv, xlsx]) = &self.downloads {
                    span class="noprint" {
                        "Download every row: " a href=(csv) { "CSV" } " · " a href=(xlsx) { "XLSX" }
                    }
                }
            }
        }
    }

    /// The table as a file holds it: the columns' file names and every row's exact values,
    /// in the default order.
    pub fn file(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let kept = |i: &usize| self.columns.get(*i).is_none_or(Column::in_file);
        (
            self.columns
                .iter()
                .filter(|c| c.in_file())
                .map(|c| c.file.clone())
                .collect(),
            self.rows
                .iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .filter(|(i, _)| kept(i))
                        .map(|(_, c)| c.exact.clone())
                        .collect()
                })
                .collect(),
        )
    }

    /// Several tables of one kind as one: a first column named `file` holds each part's name
    /// (in files; the page shows the parts as separate tables).
    pub fn stacked(file: &str, parts: &[(String, Table)]) -> Table {
        let mut columns = vec![Column::words(file, file)];
        columns.extend(parts.first().map_or(Vec::new(), |(_, t)| t.columns.clone()));
        Table {
            caption: String::new(),
            rows_are: String::new(),
            columns,
            rows: parts
                .iter()
                .flat_map(|(name, t)| {
                    t.rows.iter().map(move |r| {
                        std::iter::once(Cell::text(name.clone()))
                            .chain(r.iter().cloned())
                            .collect()
                    })
                })
                .collect(),
            downloads: None,
            empty: String::new(),
        }
    }

    /// Every row as a CSV or XLSX file (`format`; anything else is 404) named `name`.
    pub fn download(
        &self,
        name: &str,
        format: &str,
    ) -> Result<axum::response::Response, super::WebError> {
        let (columns, rows) = self.file();
        super::table_download(name, format, &columns, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(n: usize) -> Table {
        Table {
            caption: "Programmes".into(),
            rows_are: "programmes".into(),
            columns: vec![
                Column::words("Programme", "programme_code"),
                Column::numbers("Episodes", "episodes"),
            ],
            rows: (0..n)
                .map(|i| {
                    let episodes = (i * 37 % 101) as f64;
                    vec![
                        Cell::coded(format!("Programme {i:03}"), format!("P{i:03}")),
                        if i == 3 {
                            Cell::number(None, "–", "")
                        } else {
                            Cell::number(Some(episodes), episodes.to_string(), episodes.to_string())
                        },
                    ]
                })
                .collect(),
            downloads: None,
            empty: "No programmes.".into(),
        }
    }

    fn view(q: &[(&str, &str)]) -> View {
        let q: HashMap<String, String> = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        View::of("t", "/national/quality", &q)
    }

    #[test]
    fn a_long_table_is_paged_and_keeps_the_pages_other_choices_in_its_links() {
        let t = table(120);
        let html = t
            .render(&view(&[("from", "2025-04-01"), ("t-page", "2")]))
            .into_string();
        assert!(
            html.contains("Showing 51 to 100 of 120 programmes"),
            "{html}"
        );
        assert!(html.contains("Page 2 of 3"));
        assert!(html.contains("Programme 050") && !html.contains("Programme 049<"));
        assert!(html.contains("href=\"/national/quality?from=2025-04-01&amp;t-page=3#t\""));
        // Out of range: the last page.
        let html = t.render(&view(&[("t-page", "99")])).into_string();
        assert!(html.contains("Showing 101 to 120 of 120"));
    }

    #[test]
    fn numbers_sort_by_value_with_empty_cells_last_either_way() {
        let t = table(10);
        for order in ["ascending", "descending"] {
            let v = view(&[("t-sort", "1"), ("t-order", order)]);
            let rows = t.chosen(&v);
            let values: Vec<Option<f64>> = rows.iter().map(|r| r[1].number).collect();
            assert_eq!(values.last(), Some(&None), "{order}");
            let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
            let given = sorted.clone();
            sorted.sort_by(f64::total_cmp);
            if order == "descending" {
                sorted.reverse();
            }
            assert_eq!(given, sorted, "{order}");
        }
        let html = t
            .render(&view(&[("t-sort", "1"), ("t-order", "ascending")]))
            .into_string();
        assert!(html.contains("aria-sort=\"ascending\""));
        assert!(
            html.contains("t-order=descending"),
            "the heading reverses the order"
        );
    }

    #[test]
    fn a_search_finds_words_or_codes_and_says_when_nothing_matches() {
        let t = table(120);
        let v = view(&[("t-search", "p007")]);
        assert_eq!(t.chosen(&v).len(), 1);
        let html = t.render(&view(&[("t-search", "no such")])).into_string();
        assert!(html.contains("No programmes match “no such”"), "{html}");
        assert!(html.contains("Show all"));
        // A short table has no search box.
        assert!(!table(5)
            .render(&view(&[]))
            .into_string()
            .contains("type=\"search\""));
    }

    #[test]
    fn a_file_holds_every_row_with_exact_values() {
        let (columns, rows) = table(120).file();
        assert_eq!(columns, ["programme_code", "episodes"]);
        assert_eq!(rows.len(), 120);
        assert_eq!(rows[7], ["P007", "57"]);
        assert_eq!(rows[3], ["P003", ""]);
    }

    #[test]
    fn a_file_keeps_its_own_columns_and_the_page_its_own() {
        let t = Table {
            caption: "Grades".into(),
            rows_are: "programmes".into(),
            columns: vec![
                Column::words("Programme", "programme_code"),
                Column::file_only("name"),
                Column::words("Green / red", "grades").page_only(),
                Column::file_only("green"),
            ],
            rows: vec![vec![
                Cell::text("P001"),
                Cell::text("North"),
                Cell::text("3 / 1"),
                Cell::count(3).class("grade-green"),
            ]],
            downloads: None,
            empty: String::new(),
        };
        let (columns, rows) = t.file();
        assert_eq!(columns, ["programme_code", "name", "green"]);
        assert_eq!(rows, [["P001", "North", "3"]]);
        let html = t.render(&view(&[])).into_string();
        assert!(
            html.contains("<th scope=\"row\">P001</th><td>3 / 1</td></tr>"),
            "{html}"
        );
        assert!(
            !html.contains("North") && !html.contains(">green<"),
            "{html}"
        );
        // Stacked, each part's rows follow its name.
        let both = Table::stacked("grouping", &[("sex".into(), t), ("age".into(), table(2))]);
        let (columns, rows) = both.file();
        assert_eq!(columns, ["grouping", "programme_code", "name", "green"]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], ["sex", "P001", "North", "3"]);
        assert_eq!(rows[2][..2], ["age", "P001"]);
    }
}
