//! Charts as SVG with a text alternative (funnel plots, waits), drawn the same in pages, the
//! annual report and PNG downloads. A PNG is the same SVG rendered in process by resvg with the
//! bundled Liberation Sans, so no browser starts on a web request.

use crate::words::pct;
use crate::words::{number, thousands};
use crest_stats::funnel::{self, Direction, Position, Z998};
use crest_stats::kpis::ProgrammeKpis;
use crest_stats::Z95;
use maud::{html, Markup};

/// The proportion KPIs drawn as funnel plots, with their titles.
pub const FUNNELS: [(&str, &str); 4] = [
    ("uptake", "Uptake (started / referred)"),
    ("completion", "Completion (completed / started)"),
    ("assessment1", "Assessment 1 recorded (KPI 4)"),
    ("assessment2", "Assessment 2 within 140 days (KPI 7)"),
];

/// A coordinate written with one decimal, as SVG attributes take it.
fn at(v: f64) -> String {
    format!("{v:.1}")
}

/// Each programme's median wait for a KPI as a dot, with its nation's threshold as a tick,
/// sorted by the median; the text alternative names those above their threshold.
pub fn wait_plot(id: &str, key: &str, title: &str, rows: &[&ProgrammeKpis]) -> Markup {
    let mut points: Vec<(String, f64, Option<f64>)> = rows
        .iter()
        .filter_map(|k| {
            let kpi = k.results.kpis.iter().find(|x| x.key == key)?;
            Some((k.programme_code.clone(), kpi.value()?, kpi.threshold))
        })
        .collect();
    if points.is_empty() {
        return html! { p { (title) ": no patients started." } };
    }
    points.sort_by(|a, b| a.1.total_cmp(&b.1));
    let max = points
        .iter()
        .map(|p| p.1.max(p.2.unwrap_or(0.0)))
        .fold(10.0_f64, f64::max);
    let (w, row, left, top) = (640.0, 14.0, 70.0, 30.0);
    let ticks = ticks(max);
    let top_value = ticks.last().copied().unwrap_or(max).max(max);
    let bottom = top + row * points.len() as f64;
    let h = bottom + 70.0;
    let x = |d: f64| left + (w - left - 20.0) * d / top_value;
    let y = |i: usize| top + row * i as f64 + row / 2.0;
    let late = |p: &(String, f64, Option<f64>)| p.2.is_some_and(|t| p.1 > t);
    let over: Vec<String> = points
        .iter()
        .filter(|p| late(p))
        .map(|(code, median, _)| format!("{code} ({} days)", number(*median)))
        .collect();
    let (late_colour, on_time_colour) = ("#c0392b", "#005eb8");
    html! {
        figure {
            svg role="img" aria-labelledby={ (id) "-t " (id) "-d" } width=(w) height=(h)
                viewBox={ "0 0 " (w) " " (h) } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } {
                    "Each programme's median wait in days, sorted, against its nation's threshold \
                     (the grey tick on its row). "
                    @if over.is_empty() { "None is above its threshold." }
                    @else { "Above their threshold: " (over.join(", ")) "." }
                }
                text x=(left) y="16" font-size="13" font-weight="bold" { (title) }
                @for t in &ticks {
                    line x1=(at(x(*t))) x2=(at(x(*t))) y1=(top) y2=(at(bottom)) stroke="#d8dde0" {}
                    text x=(at(x(*t))) y=(at(bottom + 14.0)) font-size="10" text-anchor="middle" { (number(*t)) }
                }
                line x1=(left) x2=(w - 20.0) y1=(at(bottom)) y2=(at(bottom)) stroke="#425563" {}
                @for (i, point) in points.iter().enumerate() {
                    @let (code, median, threshold) = point;
                    text x=(left - 6.0) y=(at(y(i) + 3.0)) font-size="10" text-anchor="end" { (code) }
                    @if let Some(t) = threshold {
                        line x1=(at(x(*t))) x2=(at(x(*t))) y1=(at(y(i) - 5.0)) y2=(at(y(i) + 5.0))
                            stroke="#768692" stroke-width="2" {}
                    }
                    @let hover = format!("{code}: median {} days{}", number(*median), threshold.map_or(String::new(), |t| format!(" (threshold {})", number(t))));
                    // Above the threshold: a square as well as another colour.
                    @if late(point) {
                        rect x=(at(x(*median) - 4.0)) y=(at(y(i) - 4.0)) width="8" height="8" fill=(late_colour) {
                            title { (hover) }
                        }
                    } @else {
                        circle cx=(at(x(*median))) cy=(at(y(i))) r="4" fill=(on_time_colour) {
                            title { (hover) }
                        }
                    }
                }
                text x=(at((w + left) / 2.0)) y=(at(bottom + 30.0)) font-size="12" text-anchor="middle" {
                    "median days from referral to the start of core rehabilitation"
                }
                @let ly = bottom + 52.0;
                circle cx=(left) cy=(at(ly - 4.0)) r="4" fill=(on_time_colour) {}
                text x=(left + 10.0) y=(at(ly)) font-size="11" { "at or under the threshold" }
                rect x=(left + 170.0) y=(at(ly - 8.0)) width="8" height="8" fill=(late_colour) {}
                text x=(left + 184.0) y=(at(ly)) font-size="11" { "above the threshold" }
                line x1=(left + 320.0) x2=(left + 320.0) y1=(at(ly - 9.0)) y2=(at(ly + 1.0)) stroke="#768692" stroke-width="2" {}
                text x=(left + 328.0) y=(at(ly)) font-size="11" { "the nation's threshold" }
            }
            figcaption {
                (title) ": " (points.len()) " programme(s); "
                @if over.is_empty() {
                    "none above its threshold."
                } @else {
                    "above their threshold: " (over.join(", ")) "."
                }
            }
        }
    }
}

/// A level's colour: each at least 3:1 against white, and told apart by shape as well.
fn marker_colour(position: Position) -> &'static str {
    match position {
        Position::Within => "#005eb8",
        Position::Alert(_) => "#8a4b00",
        Position::Alarm(_) => "#c0392b",
    }
}

/// A level in words, for hover titles.
fn level_words(position: Position) -> &'static str {
    match position {
        Position::Within => "within the limits",
        Position::Alert(Direction::Low) => "alert low (outside the 95% limits)",
        Position::Alert(Direction::High) => "alert high (outside the 95% limits)",
        Position::Alarm(Direction::Low) => "alarm low (outside the 99.8% limits)",
        Position::Alarm(Direction::High) => "alarm high (outside the 99.8% limits)",
    }
}

/// A programme's mark: a circle within the limits, a triangle for an alert, a square for an
/// alarm (so the level is read from the shape, not only the colour), with a hover title.
fn marker(
    position: Position,
    cx: f64,
    cy: f64,
    r: f64,
    colour: &str,
    ringed: bool,
    hover: &str,
) -> Markup {
    let stroke = ringed.then_some("#1b1b1b");
    let width = ringed.then_some("3");
    html! {
        @match position {
            Position::Within => circle cx=(at(cx)) cy=(at(cy)) r=(at(r)) fill=(colour) stroke=[stroke] stroke-width=[width] {
                title { (hover) }
            },
            Position::Alert(_) => polygon fill=(colour) stroke=[stroke] stroke-width=[width]
                points={ (at(cx)) "," (at(cy - r * 1.3)) " " (at(cx - r * 1.2)) "," (at(cy + r)) " " (at(cx + r * 1.2)) "," (at(cy + r)) } {
                title { (hover) }
            },
            Position::Alarm(_) => rect x=(at(cx - r)) y=(at(cy - r)) width=(at(2.0 * r)) height=(at(2.0 * r)) fill=(colour)
                stroke=[stroke] stroke-width=[width] {
                title { (hover) }
            },
        }
    }
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
pub fn funnel_plot(id: &str, title: &str, points: &[(String, u64, u64)]) -> Markup {
    funnel_plot_for(id, title, points, None, funnel::Method::Auto, None)
}

/// A funnel plot as [`funnel_plot`], with one programme (`selected`) marked and named, limits
/// by `method`, and the caption linking to where the outliers are listed.
pub fn funnel_plot_for(
    id: &str,
    title: &str,
    points: &[(String, u64, u64)],
    selected: Option<&str>,
    method: funnel::Method,
    outliers_href: Option<&str>,
) -> Markup {
    let Some(fit) = funnel::Fit::new(
        &points.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>(),
        method,
    ) else {
        return html! { p { (title) ": no data." } };
    };
    let dots: Vec<Dot> = points
        .iter()
        .filter(|p| p.2 > 0)
        .map(|(code, k, n)| Dot {
            code: code.clone(),
            at: Some((*k, *n)),
            position: fit.position(*k, *n).unwrap_or(Position::Within),
            shown: format!(
                "{}/{} = {}",
                thousands(*k),
                thousands(*n),
                pct(Some(*k as f64 / *n as f64))
            ),
        })
        .collect();
    draw_funnel(&FunnelChart {
        id,
        title,
        fit: &fit,
        programmes: points.len(),
        dots: &dots,
        note: "",
        selected,
        outliers_href,
    })
}

/// Most programme names written on a funnel plot: the selected programme and the alarms
/// furthest outside; the rest are left to the outliers list.
pub const MAX_FUNNEL_LABELS: usize = 15;

/// A funnel plot to draw: its fit over `programmes`, the dots, and what the caption adds.
pub struct FunnelChart<'a> {
    /// The figure's id (prefix of its title and description ids).
    pub id: &'a str,
    /// What it plots, e.g. "Uptake (started / referred)".
    pub title: &'a str,
    /// The limits (by the fit's method).
    pub fit: &'a funnel::Fit,
    /// How many programmes the fit is over.
    pub programmes: usize,
    /// Every programme's dot, drawn or not.
    pub dots: &'a [Dot],
    /// Added to the caption after the method.
    pub note: &'a str,
    /// The programme to mark and name.
    pub selected: Option<&'a str>,
    /// Where the programmes outside the limits are listed, linked from the caption.
    pub outliers_href: Option<&'a str>,
}

/// Draws a funnel plot (see [`FunnelChart`]). Only the selected programme and alarms are
/// named on the plot, at most [`MAX_FUNNEL_LABELS`] and never overlapping; the caption counts
/// the programmes outside each limit and links to their list.
pub fn draw_funnel(chart: &FunnelChart<'_>) -> Markup {
    let FunnelChart {
        id,
        title,
        fit,
        programmes,
        dots,
        note,
        selected,
        outliers_href,
    } = *chart;
    let p0 = fit.p0;
    let max_n = dots
        .iter()
        .filter_map(|d| d.at.map(|a| a.1))
        .max()
        .unwrap_or(1)
        .max(10) as f64;
    // Room above for the title, at the right for the limits' labels, below for the axis and
    // the legend.
    let (w, h, left, right, top, bottom) = (700.0, 400.0, 64.0, 52.0, 34.0, 96.0);
    let x_ticks = ticks(max_n);
    let max_n = x_ticks.last().copied().unwrap_or(max_n).max(max_n);
    let x = |n: f64| left + (w - left - right) * n / max_n;
    let y = |p: f64| top + (h - bottom - top) * (1.0 - p.clamp(0.0, 1.0));
    // Where each limit line ends, for its label; the 99.8% labels are kept a line clear of the
    // 95% ones, outwards, so the four never overlap where the funnel has narrowed.
    let end = |z: f64, upper: bool| {
        let (lo, hi) = fit.limits(max_n as u64, z).unwrap_or((0.0, 1.0));
        let (lo95, hi95) = fit.limits(max_n as u64, Z95).unwrap_or((0.0, 1.0));
        match (z == Z95, upper) {
            (true, true) => y(hi),
            (true, false) => y(lo),
            (false, true) => y(hi).min(y(hi95) - 11.0),
            (false, false) => y(lo).max(y(lo95) + 11.0),
        }
    };
    let limit = |z: f64, upper: bool| -> String {
        (1..=60)
            .map(|i| {
                let n = (max_n * i as f64 / 60.0).max(1.0);
                let (lo, hi) = fit.limits(n as u64, z).unwrap_or((0.0, 1.0));
                format!("{:.1},{:.1}", x(n), y(if upper { hi } else { lo }))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let drawn: Vec<(&Dot, f64, f64, &str)> = dots
        .iter()
        .filter_map(|d| {
            let (k, n) = d.at.filter(|a| a.1 > 0)?;
            let colour = marker_colour(d.position);
            Some((d, x(n as f64), y(k as f64 / n as f64), colour))
        })
        .collect();
    // Only the selected programme and the alarms are named, furthest outside first, each
    // beside its dot where the name overlaps no other; a name with no free place is left to
    // the outliers list.
    let mut labels: Vec<(String, f64, f64, bool)> = Vec::new();
    let mut taken: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut wanted: Vec<&(&Dot, f64, f64, &str)> = drawn
        .iter()
        .filter(|(d, ..)| {
            selected == Some(d.code.as_str()) || matches!(d.position, Position::Alarm(_))
        })
        .collect();
    let distance = |d: &Dot| {
        d.at.map_or(0.0, |(k, n)| {
            (k as f64 / n as f64 - p0).abs() / (p0 * (1.0 - p0) / n as f64).sqrt()
        })
    };
    wanted.sort_by(|(a, ..), (b, ..)| {
        let first = |d: &Dot| selected != Some(d.code.as_str());
        first(a)
            .cmp(&first(b))
            .then(distance(b).total_cmp(&distance(a)))
    });
    for (d, cx, cy, _) in wanted {
        if labels.len() >= MAX_FUNNEL_LABELS {
            break;
        }
        let chosen = selected == Some(d.code.as_str());
        let text = if chosen {
            format!("{} (you)", d.code)
        } else {
            d.code.clone()
        };
        let (size, gap) = if chosen { (12.0, 9.0) } else { (10.0, 5.0) };
        let width = text.chars().count() as f64 * size * 0.6;
        let place = [
            (cx + gap, cy - gap),
            (cx + gap, cy + gap + size),
            (cx - gap - width, cy - gap),
            (cx - gap - width, cy + gap + size),
        ]
        .into_iter()
        .map(|(lx, ly)| (lx, ly, (lx, ly - size, lx + width, ly)))
        .find(|(_, _, (x0, y0, x1, y1))| {
            *x0 >= 0.0
                && *x1 <= w
                && taken
                    .iter()
                    .all(|(a0, b0, a1, b1)| x1 < a0 || x0 > a1 || y1 < b0 || y0 > b1)
        });
        if let Some((lx, ly, bbox)) = place {
            taken.push(bbox);
            labels.push((text, lx, ly, chosen));
        }
    }
    let outside = funnel_counts(dots);
    html! {
        figure {
            svg role="img" aria-labelledby={ (id) "-t " (id) "-d" } width=(w) height=(h)
                viewBox={ "0 0 " (w) " " (h) } {
                title id={ (id) "-t" } { "Funnel plot: " (title) }
                desc id={ (id) "-d" } {
                    "Each dot is a programme: its proportion against its number of patients. \
                     The pooled proportion is " (pct(Some(p0))) "; the inner lines are the 95% \
                     limits, the outer the 99.8% limits."
                }
                text x=(left) y="18" font-size="13" font-weight="700" { (title) }
                @for (z, dash, name) in [(Z95, "4 3", "95%"), (Z998, "", "99.8%")] {
                    @for upper in [false, true] {
                        polyline fill="none" stroke="#425563" stroke-dasharray=(dash)
                            points=(limit(z, upper)) {
                            title { (name) " limits" }
                        }
                        text x=(at(w - right + 4.0)) y=(at(end(z, upper) + 4.0)) font-size="10" fill="#425563" { (name) }
                    }
                }
                // Axes with tick values: the proportion up the side, patients along the bottom.
                @for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
                    line x1=(left) x2=(at(w - right)) y1=(at(y(t))) y2=(at(y(t))) stroke="#eef0f1" {}
                    text x=(left - 6.0) y=(at(y(t) + 4.0)) font-size="11" text-anchor="end" { (format!("{:.0}%", t * 100.0)) }
                }
                @for (i, t) in x_ticks.iter().enumerate() {
                    line x1=(at(x(*t))) x2=(at(x(*t))) y1=(at(y(0.0))) y2=(at(y(0.0) + 4.0)) stroke="#425563" {}
                    text x=(at(x(*t))) y=(at(y(0.0) + 16.0)) font-size="11"
                        text-anchor=(if i + 1 == x_ticks.len() { "end" } else { "middle" }) { (number(*t)) }
                }
                line x1=(left) x2=(left) y1=(at(y(1.0))) y2=(at(y(0.0))) stroke="#425563" {}
                line x1=(left) x2=(at(w - right)) y1=(at(y(0.0))) y2=(at(y(0.0))) stroke="#425563" {}
                text x="14" y=(at(y(0.5))) font-size="12" text-anchor="middle"
                    transform={ "rotate(-90 14 " (at(y(0.5))) ")" } { "proportion" }
                line x1=(left) x2=(at(w - right)) y1=(at(y(p0))) y2=(at(y(p0))) stroke="#005eb8" stroke-width="2" {
                    title { "Pooled proportion " (pct(Some(p0))) }
                }
                text x=(left + 4.0) y=(at(y(p0) - 5.0)) font-size="10" fill="#005eb8" { "pooled " (pct(Some(p0))) }
                @for (d, cx, cy, colour) in &drawn {
                    @let chosen = selected == Some(d.code.as_str());
                    (marker(d.position, *cx, *cy, if chosen { 7.0 } else { 4.5 }, colour, chosen,
                        &format!("{}: {}, {}", d.code, d.shown, level_words(d.position))))
                }
                @for (text, lx, ly, bold) in &labels {
                    text x=(at(*lx)) y=(at(*ly)) font-size=(if *bold { "12" } else { "10" })
                        font-weight=[bold.then_some("700")] { (text) }
                }
                text x=(at(left + (w - left - right) / 2.0)) y=(at(y(0.0) + 34.0)) font-size="12" text-anchor="middle" {
                    "patients (denominator)"
                }
                // The legend: shape and colour both tell the level, so it reads without colour.
                @let ly = h - 22.0;
                @for (i, (position, words)) in [
                    (Position::Within, "within the limits"),
                    (Position::Alert(Direction::Low), "alert: outside 95%"),
                    (Position::Alarm(Direction::Low), "alarm: outside 99.8%"),
                ].into_iter().enumerate() {
                    @let lx = left + 150.0 * i as f64;
                    (marker(position, lx + 5.0, ly, 4.5, marker_colour(position), false, words))
                    text x=(at(lx + 14.0)) y=(at(ly + 4.0)) font-size="11" { (words) }
                }
                line x1=(at(left + 450.0)) x2=(at(left + 472.0)) y1=(at(ly)) y2=(at(ly)) stroke="#425563" stroke-dasharray="4 3" {}
                text x=(at(left + 476.0)) y=(at(ly + 4.0)) font-size="11" { "95%" }
                line x1=(at(left + 510.0)) x2=(at(left + 532.0)) y1=(at(ly)) y2=(at(ly)) stroke="#425563" {}
                text x=(at(left + 536.0)) y=(at(ly + 4.0)) font-size="11" { "99.8% limits" }
            }
            figcaption {
                (title) ": pooled " (pct(Some(p0))) " over " (programmes) " programmes. "
                @if let Some(code) = selected {
                    @if let Some(d) = dots.iter().find(|d| d.code == code && d.at.is_none()) {
                        // Its counts are hidden: no dot, and no level (a level would narrow them).
                        (code) ": " (d.shown) ", not drawn: counts of 1 to 7, or a level that would narrow a result too few to assess, are not published. "
                    } @else if let Some(d) = dots.iter().find(|d| d.code == code) {
                        (code) " (the larger ringed dot): " (d.shown) ", "
                        (match d.position {
                            Position::Within => "within the limits",
                            Position::Alert(Direction::Low) => "alert low (outside the 95% limits)",
                            Position::Alert(Direction::High) => "alert high (outside the 95% limits)",
                            Position::Alarm(Direction::Low) => "alarm low (outside the 99.8% limits)",
                            Position::Alarm(Direction::High) => "alarm high (outside the 99.8% limits)",
                        }) ". "
                    }
                }
                (fit.describe()) " "
                @if !note.is_empty() { (note) " " }
                (outside) " "
                @if let (Some(href), false) = (outliers_href, outside.none()) {
                    a href=(href) { "The outliers list names them." }
                }
            }
        }
    }
}

/// How many programmes of a funnel are outside each limit, low and high.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunnelCounts {
    /// Outside the 99.8% limits: (low, high).
    pub alarm: (usize, usize),
    /// Outside the 95% limits only: (low, high).
    pub alert: (usize, usize),
}

/// Counts the dots outside each limit.
pub fn funnel_counts(dots: &[Dot]) -> FunnelCounts {
    let mut c = FunnelCounts::default();
    for d in dots {
        let (pair, dir) = match d.position {
            Position::Alarm(dir) => (&mut c.alarm, dir),
            Position::Alert(dir) => (&mut c.alert, dir),
            Position::Within => continue,
        };
        match dir {
            Direction::Low => pair.0 += 1,
            Direction::High => pair.1 += 1,
        }
    }
    c
}

impl FunnelCounts {
    /// Whether every programme is within the 95% limits.
    pub fn none(&self) -> bool {
        *self == FunnelCounts::default()
    }
}

impl std::fmt::Display for FunnelCounts {
    /// "2 programmes are outside the 99.8% limits (alarm: 1 low, 1 high) and 3 more outside
    /// the 95% limits only (alert: 3 low, 0 high)."
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.none() {
            return f.write_str("No programme is outside the 95% limits.");
        }
        let programmes = |n: usize| {
            if n == 1 {
                "1 programme is".to_string()
            } else {
                format!("{n} programmes are")
            }
        };
        let (alarm, alert) = (self.alarm.0 + self.alarm.1, self.alert.0 + self.alert.1);
        write!(
            f,
            "{} outside the 99.8% limits (alarm: {} low, {} high)",
            programmes(alarm),
            self.alarm.0,
            self.alarm.1
        )?;
        write!(
            f,
            " and {alert} more outside the 95% limits only (alert: {} low, {} high).",
            self.alert.0, self.alert.1
        )
    }
}

/// About four round tick values from 0 to at least `max` (steps of 1, 2 or 5 × 10ⁿ).
pub fn ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let rough = max / 4.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(power * 10.0);
    let mut out = vec![0.0];
    while out.last().is_some_and(|t| *t < max) {
        out.push(out.len() as f64 * step);
    }
    out
}

/// A column chart with a labelled value axis (ticks and grid lines) and labelled columns,
/// e.g. patients by week of wait.
pub fn column_chart(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    columns: &[(String, f64)],
) -> Markup {
    let (w, h, left, bottom, top) = (600.0, 240.0, 56.0, 48.0, 12.0);
    let max = columns.iter().map(|c| c.1).fold(0.0, f64::max);
    let ticks = ticks(max);
    let top_value = ticks.last().copied().unwrap_or(1.0).max(1.0);
    let plot_h = h - bottom - top;
    let y = |v: f64| top + plot_h * (1.0 - v / top_value);
    let slot = (w - left - 10.0) / columns.len().max(1) as f64;
    let described: Vec<String> = columns
        .iter()
        .map(|(label, v)| format!("{label}: {}", number(*v)))
        .collect();
    html! {
        figure {
            svg role="img" aria-labelledby={ (id) "-t " (id) "-d" } width=(w) height=(h)
                viewBox={ "0 0 " (w) " " (h) } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } { (x_label) " against " (y_label) ". " (described.join("; ")) "." }
                @for t in &ticks {
                    line x1=(left) x2=(w - 10.0) y1=(at(y(*t))) y2=(at(y(*t))) stroke="#d8dde0" {}
                    text x=(left - 6.0) y=(at(y(*t) + 4.0)) font-size="11" text-anchor="end" { (number(*t)) }
                }
                text x="14" y=(at(top + plot_h / 2.0)) font-size="12" text-anchor="middle"
                    transform={ "rotate(-90 14 " (at(top + plot_h / 2.0)) ")" } { (y_label) }
                @for (i, (label, v)) in columns.iter().enumerate() {
                    @let x = left + slot * i as f64;
                    rect x=(at(x + 2.0)) y=(at(y(*v))) width=(at((slot - 4.0).max(1.0)))
                        height=(at(y(0.0) - y(*v))) fill="#005eb8" {
                        title { (label) ": " (number(*v)) }
                    }
                    text x=(at(x + slot / 2.0)) y=(at(h - bottom + 14.0)) font-size="11" text-anchor="middle" { (label) }
                }
                line x1=(left) x2=(left) y1=(top) y2=(at(y(0.0))) stroke="#425563" {}
                line x1=(left) x2=(w - 10.0) y1=(at(y(0.0))) y2=(at(y(0.0))) stroke="#425563" {}
                text x=(at(left + (w - left) / 2.0)) y=(h - 8.0) font-size="12" text-anchor="middle" { (x_label) }
            }
            figcaption { (title) }
        }
    }
}

/// Proportions as horizontal bars on a 0–100% axis, each with its 95% Wilson interval as a
/// line, and an optional reference value (e.g. the overall uptake) as a dashed line. Each row is
/// (group, referred, started).
pub fn proportion_bars(
    id: &str,
    title: &str,
    rows: &[(String, u64, u64)],
    reference: Option<(f64, &str)>,
) -> Markup {
    let bars: Vec<ShareBar> = rows
        .iter()
        .map(|(g, n, k)| ShareBar {
            label: g.clone(),
            counts: Some((*k, *n)),
        })
        .collect();
    share_bars(
        id,
        title,
        &bars,
        &ShareAxis {
            label: "share who started core rehabilitation",
            of: "referred",
            none: "nobody referred",
            intervals: true,
        },
        reference,
    )
}

/// One bar of [`share_bars`]: its label and (numerator, denominator), or `None` where the
/// counts are too few to publish.
#[derive(Clone, Debug)]
pub struct ShareBar {
    /// The group or measure the bar is for.
    pub label: String,
    /// (numerator, denominator); `None` when withheld by disclosure control.
    pub counts: Option<(u64, u64)>,
}

/// How [`share_bars`] words its axis and its empty bars.
#[derive(Clone, Copy, Debug)]
pub struct ShareAxis<'a> {
    /// The axis title, e.g. "share who started core rehabilitation".
    pub label: &'a str,
    /// What the denominator counts, for the text alternative ("3 of 10 referred").
    pub of: &'a str,
    /// Shown where the denominator is 0, e.g. "nobody referred".
    pub none: &'a str,
    /// Whether to draw each bar's 95% Wilson interval.
    pub intervals: bool,
}

/// Shares as horizontal bars on a 0–100% axis (optionally with 95% Wilson intervals and a
/// dashed reference line), each labelled with its percentage; a withheld bar says so in words.
pub fn share_bars(
    id: &str,
    title: &str,
    rows: &[ShareBar],
    axis: &ShareAxis,
    reference: Option<(f64, &str)>,
) -> Markup {
    let (w, row, left, top) = (600.0, 26.0, 190.0, 30.0);
    let legend = match (axis.intervals, reference) {
        (true, Some((v, what))) => format!(
            "Lines across the bars: 95% intervals. Dashed line: {what}, {}.",
            pct(Some(v))
        ),
        (true, None) => "Lines across the bars: 95% intervals.".to_string(),
        (false, Some((v, what))) => format!("Dashed line: {what}, {}.", pct(Some(v))),
        (false, None) => String::new(),
    };
    let h = top + row * rows.len() as f64 + if legend.is_empty() { 44.0 } else { 62.0 };
    let x = |p: f64| left + (w - left - 60.0) * p.clamp(0.0, 1.0);
    let bottom = top + row * rows.len() as f64;
    let interval = |k: u64, n: u64| {
        if axis.intervals {
            crest_stats::summary::wilson(k, n, Z95)
        } else {
            None
        }
    };
    let described: Vec<String> = rows
        .iter()
        .map(|b| match b.counts {
            None => format!("{}: too few to show", b.label),
            Some((_, 0)) => format!("{}: {}", b.label, axis.none),
            Some((k, n)) => format!(
                "{}: {} of {} {}, {}",
                b.label,
                thousands(k),
                thousands(n),
                axis.of,
                pct(Some(k as f64 / n as f64))
            ),
        })
        .collect();
    html! {
        figure {
            svg role="img" aria-labelledby={ (id) "-t " (id) "-d" } width=(w) height=(h)
                viewBox={ "0 0 " (w) " " (h) } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } {
                    (described.join("; ")) "."
                    @if axis.intervals { " Lines across the bars are 95% intervals." }
                    @if let Some((v, what)) = reference { " The dashed line is " (what) ", " (pct(Some(v))) "." }
                }
                text x="6" y="18" font-size="13" font-weight="bold" { (title) }
                @for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
                    line x1=(at(x(t))) x2=(at(x(t))) y1=(top) y2=(bottom) stroke="#d8dde0" {}
                    text x=(at(x(t))) y=(at(bottom + 14.0)) font-size="11" text-anchor="middle" { (format!("{:.0}%", t * 100.0)) }
                }
                @for (i, b) in rows.iter().enumerate() {
                    @let yy = top + row * i as f64;
                    text x=(left - 6.0) y=(at(yy + row / 2.0 + 4.0)) font-size="11" text-anchor="end" { (b.label) }
                    @match b.counts {
                        Some((k, n)) if n > 0 => {
                            @let p = k as f64 / n as f64;
                            rect x=(left) y=(at(yy + 5.0)) width=(at(x(p) - left)) height=(at(row - 10.0)) fill="#005eb8" {
                                title { (b.label) ": " (thousands(k)) " of " (thousands(n)) ", " (pct(Some(p))) }
                            }
                            @if let Some((lo, hi)) = interval(k, n) {
                                line x1=(at(x(lo))) x2=(at(x(hi))) y1=(at(yy + row / 2.0)) y2=(at(yy + row / 2.0)) stroke="#1b1b1b" stroke-width="2" {}
                            }
                            text x=(at(x(p).max(x(interval(k, n).map_or(p, |c| c.1))) + 4.0)) y=(at(yy + row / 2.0 + 4.0)) font-size="11" { (pct(Some(p))) }
                        }
                        Some(_) => {
                            text x=(left + 4.0) y=(at(yy + row / 2.0 + 4.0)) font-size="11" { (axis.none) }
                        }
                        None => {
                            text x=(left + 4.0) y=(at(yy + row / 2.0 + 4.0)) font-size="11" { "too few to show (*)" }
                        }
                    }
                }
                @if let Some((v, _)) = reference {
                    line x1=(at(x(v))) x2=(at(x(v))) y1=(top) y2=(bottom) stroke="#1b1b1b" stroke-dasharray="5 3" {}
                }
                line x1=(left) x2=(left) y1=(top) y2=(bottom) stroke="#425563" {}
                text x=(at(left + (w - left - 60.0) / 2.0)) y=(at(bottom + 32.0)) font-size="12" text-anchor="middle" { (axis.label) }
                @if !legend.is_empty() {
                    text x="6" y=(at(bottom + 52.0)) font-size="11" { (legend) }
                }
            }
            figcaption { (title) }
        }
    }
}

/// Proportions over successive periods as lines on a 0–100% axis, one per series, each named
/// at its last point and drawn in its own dash pattern as well as colour.
pub fn trend_chart(
    id: &str,
    title: &str,
    periods: &[String],
    series: &[(&str, Vec<Option<f64>>)],
) -> Markup {
    const STYLES: [(&str, &str); 4] = [
        ("#005eb8", ""),
        ("#e69f00", "6 3"),
        ("#009e73", "2 3"),
        ("#cc79a7", "8 3 2 3"),
    ];
    let (w, h, left, right, top, bottom) = (600.0, 240.0, 50.0, 170.0, 12.0, 40.0);
    let n = periods.len().max(2);
    let x = |i: usize| left + (w - left - right) * i as f64 / (n - 1) as f64;
    let y = |p: f64| top + (h - top - bottom) * (1.0 - p.clamp(0.0, 1.0));
    // Each series is named at its last point; names that would overlap are pushed apart.
    let mut label_y: Vec<(usize, f64)> = series
        .iter()
        .enumerate()
        .filter_map(|(j, (_, values))| Some((j, y(values.iter().rev().find_map(|v| *v)?))))
        .collect();
    label_y.sort_by(|a, b| a.1.total_cmp(&b.1));
    for i in 1..label_y.len() {
        let min = label_y[i - 1].1 + 13.0;
        if label_y[i].1 < min {
            label_y[i].1 = min;
        }
    }
    let described: Vec<String> = series
        .iter()
        .map(|(name, values)| {
            let v: Vec<String> = periods
                .iter()
                .zip(values)
                .map(|(p, v)| format!("{p} {}", pct(*v)))
                .collect();
            format!("{name}: {}", v.join(", "))
        })
        .collect();
    html! {
        figure {
            svg role="img" aria-labelledby={ (id) "-t " (id) "-d" } width=(w) height=(h)
                viewBox={ "0 0 " (w) " " (h) } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } { (described.join("; ")) "." }
                @for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
                    line x1=(left) x2=(w - right) y1=(at(y(t))) y2=(at(y(t))) stroke="#d8dde0" {}
                    text x=(left - 6.0) y=(at(y(t) + 4.0)) font-size="11" text-anchor="end" { (format!("{:.0}%", t * 100.0)) }
                }
                @for (i, p) in periods.iter().enumerate() {
                    text x=(at(x(i))) y=(at(h - bottom + 16.0)) font-size="11" text-anchor="middle" { (p) }
                }
                @for (j, (name, values)) in series.iter().enumerate() {
                    @let (colour, dash) = STYLES[j % STYLES.len()];
                    @let pts: Vec<(usize, f64)> = values.iter().enumerate().filter_map(|(i, v)| Some((i, (*v)?))).collect();
                    polyline fill="none" stroke=(colour) stroke-width="2.5" stroke-dasharray=(dash)
                        points=(pts.iter().map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v))).collect::<Vec<_>>().join(" ")) {}
                    @for (i, v) in &pts {
                        circle cx=(at(x(*i))) cy=(at(y(*v))) r="3.5" fill=(colour) {
                            title { (name) ", " (periods[*i]) ": " (pct(Some(*v))) }
                        }
                    }
                }
                @for (j, ly) in &label_y {
                    @if let Some((i, _)) = series[*j].1.iter().enumerate().rev().find(|(_, v)| v.is_some()) {
                        text x=(at(x(i) + 8.0)) y=(at(*ly + 4.0)) font-size="11" fill="#1b1b1b" { (series[*j].0) }
                    }
                }
                line x1=(left) x2=(left) y1=(top) y2=(at(y(0.0))) stroke="#425563" {}
            }
            figcaption { (title) }
        }
    }
}

/// A small chart of one measure at the start and the end of rehabilitation (assessments 1
/// and 2): two labelled points joined by a line, on an axis from the lower to the higher value,
/// for the patient's progress report.
pub fn change_chart(id: &str, title: &str, start: Option<f64>, end: Option<f64>) -> Markup {
    let (w, h, left, right, top, bottom) = (220.0, 96.0, 44.0, 20.0, 16.0, 22.0);
    let values: Vec<f64> = [start, end].into_iter().flatten().collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    // Some headroom, so two equal values still draw a level line in the middle.
    let pad = ((hi - lo) * 0.2).max(hi.abs() * 0.05).max(1.0);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |i: usize| {
        if i == 0 {
            left + 20.0
        } else {
            w - right - 20.0
        }
    };
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo));
    let described = match (start, end) {
        (Some(a), Some(b)) => format!("{} at the start, {} at the end.", number(a), number(b)),
        (Some(a), None) => format!("{} at the start; not measured at the end.", number(a)),
        (None, Some(b)) => format!("Not measured at the start; {} at the end.", number(b)),
        (None, None) => "Not measured.".to_string(),
    };
    let points: Vec<(usize, f64)> = [start, end]
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| Some((i, v?)))
        .collect();
    html! {
        figure class="small-chart" {
            svg role="img" aria-labelledby={ (id) "-t " (id) "-d" } width=(w) height=(h)
                viewBox={ "0 0 " (w) " " (h) } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } { (described) }
                // The value axis, with its two ends labelled.
                line x1=(left) x2=(left) y1=(top) y2=(h - bottom) stroke="#425563" {}
                text x=(left - 4.0) y=(at(top + 4.0)) font-size="10" text-anchor="end" { (number((hi * 10.0).round() / 10.0)) }
                text x=(left - 4.0) y=(at(h - bottom)) font-size="10" text-anchor="end" { (number((lo * 10.0).round() / 10.0)) }
                line x1=(left) x2=(w - right) y1=(h - bottom) y2=(h - bottom) stroke="#425563" {}
                text x=(x(0)) y=(h - 6.0) font-size="10" text-anchor="middle" { "Start" }
                text x=(x(1)) y=(h - 6.0) font-size="10" text-anchor="middle" { "End" }
                @if let [(i, a), (j, b)] = points[..] {
                    line x1=(x(i)) x2=(x(j)) y1=(at(y(a))) y2=(at(y(b))) stroke="#005eb8" stroke-width="2" {}
                }
                @for (i, v) in &points {
                    circle cx=(x(*i)) cy=(at(y(*v))) r="4" fill="#005eb8" {}
                    text x=(x(*i)) y=(at(y(*v) - 7.0)) font-size="11" text-anchor="middle" font-weight="700" { (number(*v)) }
                }
            }
            figcaption { (title) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&";

    /// A programme code or title holding markup is drawn as text in the SVG, its caption and
    /// its hover titles, and the chart still renders as a PNG.
    #[test]
    fn funnel_plot_shows_hostile_names_as_text_and_renders_as_png() {
        let points = vec![
            (HOSTILE.to_string(), 2, 100),
            ("P002".to_string(), 50, 100),
            ("P003".to_string(), 55, 100),
        ];
        let chart = funnel_plot("f", HOSTILE, &points);
        let html = chart.clone().into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        // P001 (2/100 against about 36%) is far outside: named under the plot and labelled.
        assert!(html.contains("alarm low"), "{html}");
        let png = crate::svg::svg_png(&chart).expect("a PNG");
        assert_eq!(&png[1..4], b"PNG");
    }

    /// A selected programme whose counts are hidden is not drawn, and its caption says so
    /// rather than giving a level.
    #[test]
    fn a_selected_programme_with_hidden_counts_is_named_without_a_level() {
        let points = [(40, 100), (55, 100), (70, 120)];
        let fit =
            crest_stats::funnel::Fit::new(&points, crest_stats::funnel::Method::Plain).unwrap();
        let dots = vec![
            Dot {
                code: "P001".into(),
                at: None,
                position: Position::Within,
                shown: "*/15".into(),
            },
            Dot {
                code: "P002".into(),
                at: Some((55, 100)),
                position: Position::Within,
                shown: "55/100".into(),
            },
        ];
        let html = draw_funnel(&FunnelChart {
            id: "f",
            title: "Uptake",
            fit: &fit,
            programmes: 2,
            dots: &dots,
            note: "",
            selected: Some("P001"),
            outliers_href: None,
        })
        .into_string();
        assert!(
            html.contains("P001: */15, not drawn: counts of 1 to 7, or a level that would narrow a result too few to assess, are not published.")
                && !html.contains("P001 (the larger ringed dot)"),
            "{html}"
        );
    }

    #[test]
    fn wait_plot_with_no_patients_says_so_as_text() {
        let none = wait_plot("w", "wait_cabg", HOSTILE, &[]).into_string();
        assert!(
            none.contains("no patients started") && !none.contains("<script>"),
            "{none}"
        );
    }
}
