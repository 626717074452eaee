//! Charts as SVG with a text alternative (funnel plots, waits), drawn the same in pages, the
//! annual report and PNG downloads. A PNG is the same SVG rendered in process by resvg with the
//! bundled Liberation Sans, so no browser starts on a web request.

use crate::html::{esc, pct};
use crest_stats::funnel::{self, Direction, Position, Z998};
use crest_stats::kpis::ProgrammeKpis;
use crest_stats::Z95;
use std::fmt::Write;

/// The proportion KPIs drawn as funnel plots, with their titles.
pub const FUNNELS: [(&str, &str); 4] = [
    ("uptake", "Uptake (started / referred)"),
    ("completion", "Completion (completed / started)"),
    ("assessment1", "Assessment 1 recorded (KPI 4)"),
    ("assessment2", "Assessment 2 within 140 days (KPI 7)"),
];

/// Each programme's median wait for a KPI as a dot, with its nation's threshold as a tick,
/// sorted by the median; the text alternative names those above their threshold.
pub fn wait_plot(id: &str, key: &str, title: &str, rows: &[&ProgrammeKpis]) -> String {
    let mut points: Vec<(String, f64, Option<f64>)> = rows
        .iter()
        .filter_map(|k| {
            let kpi = k.results.kpis.iter().find(|x| x.key == key)?;
            Some((k.programme_code.clone(), kpi.value()?, kpi.threshold))
        })
        .collect();
    if points.is_empty() {
        return format!("<p>{}: no patients started.</p>", esc(title));
    }
    points.sort_by(|a, b| a.1.total_cmp(&b.1));
    let max = points
        .iter()
        .map(|p| p.1.max(p.2.unwrap_or(0.0)))
        .fold(10.0_f64, f64::max);
    let (w, row, left) = (640.0, 14.0, 70.0);
    let h = row * points.len() as f64 + 40.0;
    let x = |d: f64| left + (w - left - 20.0) * d / max;
    let mut s = format!(
        "<figure><svg role=\"img\" aria-labelledby=\"{id}-t {id}-d\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">Dots are programmes' median waits in days, sorted; the grey tick on each \
         row is the programme's nation's threshold.</desc>",
        esc(title)
    );
    let mut over = Vec::new();
    for (i, (code, median, threshold)) in points.iter().enumerate() {
        let y = 10.0 + row * i as f64 + row / 2.0;
        let late = threshold.is_some_and(|t| *median > t);
        if late {
            over.push(format!(
                "{} ({} days)",
                esc(code),
                crest_core::record::format_num(*median)
            ));
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 3.0,
            esc(code)
        );
        if let Some(t) = threshold {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#768692\" stroke-width=\"2\"/>",
                x(*t),
                y - 5.0,
                y + 5.0
            );
        }
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{}\"><title>{}: median {} days</title></circle>",
            x(*median),
            if late { "#d5281b" } else { "#005eb8" },
            esc(code),
            crest_core::record::format_num(*median)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">days</text></svg><figcaption>{}: {} programme(s); {}</figcaption></figure>",
        (w + left) / 2.0,
        h - 8.0,
        esc(title),
        points.len(),
        if over.is_empty() {
            "none above its threshold.".to_string()
        } else {
            format!("above their threshold: {}.", over.join(", "))
        }
    );
    s
}

/// One programme on a funnel plot.
pub struct Dot {
    /// Programme code.
    pub code: String,
    /// Where it is drawn (numerator, denominator), if it can be.
    pub at: Option<(u64, u64)>,
    /// Its position against the limits.
    pub position: Position,
    /// How its figures are written in the caption, e.g. `12/40 = 30.0%`.
    pub shown: String,
}

/// A funnel plot of one proportion across programmes (limits from their exact counts),
/// with its text alternative.
pub fn funnel_plot(id: &str, title: &str, points: &[(String, u64, u64)]) -> String {
    let Some(p0) = funnel::pooled(&points.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>()) else {
        return format!("<p>{}: no data.</p>", esc(title));
    };
    let dots: Vec<Dot> = points
        .iter()
        .filter(|p| p.2 > 0)
        .map(|(code, k, n)| Dot {
            code: code.clone(),
            at: Some((*k, *n)),
            position: funnel::position(*k, *n, p0).unwrap_or(Position::Within),
            shown: format!("{k}/{n} = {}", pct(Some(*k as f64 / *n as f64))),
        })
        .collect();
    draw_funnel(id, title, p0, points.len(), &dots, "")
}

/// Draws a funnel plot around `p0` pooled over `programmes`; `note` is added to the caption
/// before the list of programmes outside the limits (which names every one, drawn or not).
pub fn draw_funnel(
    id: &str,
    title: &str,
    p0: f64,
    programmes: usize,
    dots: &[Dot],
    note: &str,
) -> String {
    let max_n = dots
        .iter()
        .filter_map(|d| d.at.map(|a| a.1))
        .max()
        .unwrap_or(1)
        .max(10) as f64;
    let (w, h, left, bottom) = (640.0, 320.0, 50.0, 40.0);
    let x = |n: f64| left + (w - left - 10.0) * n / max_n;
    let y = |p: f64| 10.0 + (h - bottom - 10.0) * (1.0 - p.clamp(0.0, 1.0));
    let mut s = format!(
        "<figure><svg role=\"img\" aria-labelledby=\"{id}-t {id}-d\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <title id=\"{id}-t\">Funnel plot: {}</title><desc id=\"{id}-d\">Each dot is a programme: its proportion against its number of patients. \
         The pooled proportion is {}; the inner lines are the 95% limits, the outer the 99.8% limits.</desc>",
        esc(title),
        pct(Some(p0))
    );
    for (z, dash) in [(Z95, "4 3"), (Z998, "")] {
        for side in [0, 1] {
            let pts: Vec<String> = (1..=60)
                .map(|i| {
                    let n = (max_n * i as f64 / 60.0).max(1.0);
                    let (lo, hi) = funnel::limits(p0, n as u64, z).unwrap_or((0.0, 1.0));
                    format!("{:.1},{:.1}", x(n), y(if side == 0 { lo } else { hi }))
                })
                .collect();
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"#425563\" stroke-dasharray=\"{dash}\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#005eb8\"/>",
        w - 10.0,
        y(p0),
        y(p0)
    );
    let mut outliers = Vec::new();
    for d in dots {
        if d.position != Position::Within {
            outliers.push(d);
        }
        let Some((k, n)) = d.at.filter(|a| a.1 > 0) else {
            continue;
        };
        let p = k as f64 / n as f64;
        let colour = match d.position {
            Position::Within => "#005eb8",
            Position::Alert(_) => "#ed8b00",
            Position::Alarm(_) => "#d5281b",
        };
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{}: {}</title></circle>",
            x(n as f64),
            y(p),
            esc(&d.code),
            esc(&d.shown)
        );
        if d.position != Position::Within {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                x(n as f64) + 5.0,
                y(p) - 5.0,
                esc(&d.code)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">patients (denominator)</text></svg>\
         <figcaption>{}: pooled {} over {programmes} programmes. {}",
        w / 2.0,
        h - 8.0,
        esc(title),
        pct(Some(p0)),
        esc(note)
    );
    if !note.is_empty() {
        s.push(' ');
    }
    if outliers.is_empty() {
        s.push_str("No programme is outside the 95% limits.");
    } else {
        s.push_str("Outside the limits: ");
        let list: Vec<String> = outliers
            .iter()
            .map(|d| {
                let (level, dir) = match d.position {
                    Position::Alarm(d) => ("alarm", d),
                    Position::Alert(d) => ("alert", d),
                    Position::Within => ("", Direction::Low),
                };
                format!(
                    "{} {level} {} ({})",
                    esc(&d.code),
                    if dir == Direction::Low { "low" } else { "high" },
                    esc(&d.shown)
                )
            })
            .collect();
        s.push_str(&list.join("; "));
        s.push('.');
    }
    s.push_str("</figcaption></figure>");
    s
}

const FONT_REGULAR: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Regular.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Bold.ttf");

/// The chart (the first `<svg>…</svg>` in `html`) as a PNG at its own size, rendered in
/// process with the bundled fonts.
pub fn svg_png(html: &str) -> Result<Vec<u8>, crate::ReportError> {
    svg_png_text(html).map_err(crate::ReportError::Chart)
}

fn svg_png_text(html: &str) -> Result<Vec<u8>, String> {
    let (Some(start), Some(end)) = (html.find("<svg"), html.find("</svg>")) else {
        return Err("there is no chart to draw".into());
    };
    // A standalone SVG document needs its namespace (in a page, HTML supplies it).
    let svg = html[start..end + 6].replacen("<svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"", 1);
    let mut fonts = resvg::usvg::fontdb::Database::new();
    fonts.load_font_data(FONT_REGULAR.to_vec());
    fonts.load_font_data(FONT_BOLD.to_vec());
    let options = resvg::usvg::Options {
        font_family: "Liberation Sans".into(),
        fontdb: std::sync::Arc::new(fonts),
        ..Default::default()
    };
    let tree = resvg::usvg::Tree::from_str(&svg, &options)
        .map_err(|e| format!("the chart could not be read: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or("the chart has no size")?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| format!("the chart could not be encoded: {e}"))
}
