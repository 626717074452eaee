//! SPC charts drawn as NHS England's "Making Data Count" draws them: the months' values joined
//! by a line, the mean as a solid line and the process limits dashed, each phase with its own;
//! special-cause points marked by shape as well as colour (a square for an improvement, a
//! diamond for a concern); service changes as labelled vertical lines. Beside each chart, its
//! variation and assurance icons, each a shape with a letter and the words it stands for.

use crate::words::{number, pct};
use crest_stats::over_time::{Measure, Month, SpcMonth, Unit};
use crest_stats::spc::{Assurance, Chart, Improvement, Variation};
use maud::{html, Markup};

/// Making Data Count's colours: grey for common cause, blue for improvement, orange for concern.
const GREY: &str = "#7b7d7d";
const BLUE: &str = "#005eb8";
const ORANGE: &str = "#c65a00";

fn at(v: f64) -> String {
    format!("{v:.1}")
}

/// A value as its measure writes it.
pub fn value_words(measure: Measure, v: f64) -> String {
    match measure.unit() {
        Unit::Proportion => pct(Some(v)),
        Unit::Days => format!("{} days", number(v)),
        Unit::Count => number(v),
    }
}

/// A service change drawn on a chart: its date's month and what changed.
pub struct ChangeLine<'a> {
    /// The month it took effect.
    pub month: Month,
    /// What changed, in the words it was recorded with.
    pub text: &'a str,
}

/// The SPC chart of `months` (each with its point, if drawn), with `changes` as vertical lines.
/// `hidden` names months not drawn for disclosure control, said in the text alternative.
pub fn spc_chart(
    id: &str,
    measure: Measure,
    months: &[SpcMonth],
    changes: &[ChangeLine<'_>],
    hidden: &[Month],
) -> Markup {
    let (w, h, left, right, top, bottom) = (640.0, 260.0, 58.0, 30.0, 28.0, 48.0);
    let title = format!("{}, {}", measure.label(), measure.by());
    let n = months.len().max(2);
    let x = |i: usize| left + (w - left - right) * i as f64 / (n - 1) as f64;
    // The axis spans the values and the limits, with a little room.
    let mut lo = f64::MAX;
    let mut hi = f64::MIN;
    for m in months {
        if let Some(p) = m.point {
            lo = lo.min(p.value);
            hi = hi.max(p.value);
            if let Some(l) = p.limits {
                lo = lo.min(l.lower);
                hi = hi.max(l.upper);
            }
        }
    }
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    if measure.unit() == Unit::Proportion {
        (lo, hi) = (lo.max(0.0), hi.min(1.0));
    } else {
        lo = lo.max(0.0);
    }
    let pad = ((hi - lo) * 0.08).max(if measure.unit() == Unit::Proportion {
        0.01
    } else {
        1.0
    });
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let hi = if measure.unit() == Unit::Proportion {
        hi.min(1.0)
    } else {
        hi
    };
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo));
    let ticks: Vec<f64> = (0..=4).map(|i| lo + (hi - lo) * i as f64 / 4.0).collect();
    let drawn: Vec<(usize, &SpcMonth)> = months
        .iter()
        .enumerate()
        .filter(|(_, m)| m.point.is_some())
        .collect();
    // Each phase's centre and limits as horizontal segments over its months.
    let mut phases: Vec<(usize, usize, crest_stats::spc::Limits)> = Vec::new();
    for (i, m) in &drawn {
        let Some(p) = m.point else { continue };
        let Some(l) = p.limits else { continue };
        match phases.last_mut() {
            Some(last) if last.2 == l => last.1 = *i,
            _ => phases.push((*i, *i, l)),
        }
    }
    let line: Vec<String> = drawn
        .iter()
        .filter_map(|(i, m)| m.point.map(|p| format!("{:.1},{:.1}", x(*i), y(p.value))))
        .collect();
    let described = describe(measure, months, hidden);
    let label_every = months.len().div_ceil(8).max(1);
    html! {
        figure class="spc" {
            svg role="img" aria-labelledby={ (id) "-t " (id) "-d" } width=(w) height=(h)
                viewBox={ "0 0 " (w) " " (h) } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } { (described) }
                @for t in &ticks {
                    line x1=(left) x2=(w - right) y1=(at(y(*t))) y2=(at(y(*t))) stroke="#eef0f1" {}
                    text x=(left - 6.0) y=(at(y(*t) + 4.0)) font-size="11" text-anchor="end" {
                        (axis_words(measure, *t, hi - lo))
                    }
                }
                @for (i, m) in months.iter().enumerate() {
                    @if i % label_every == 0 || i + 1 == months.len() {
                        text x=(at(x(i))) y=(at(h - bottom + 16.0)) font-size="10" text-anchor="middle" { (m.figures.month.short()) }
                    }
                }
                @for (from, to, l) in &phases {
                    @let (x1, x2) = (at(x(*from) - 4.0), at(x(*to) + 4.0));
                    line x1=(x1) x2=(x2) y1=(at(y(l.centre))) y2=(at(y(l.centre))) stroke="#231f20" stroke-width="1.5" {}
                    line x1=(x1) x2=(x2) y1=(at(y(l.upper))) y2=(at(y(l.upper))) stroke="#425563" stroke-dasharray="6 4" {}
                    line x1=(x1) x2=(x2) y1=(at(y(l.lower))) y2=(at(y(l.lower))) stroke="#425563" stroke-dasharray="6 4" {}
                }
                @for c in changes {
                    @if let Some(i) = months.iter().position(|m| m.figures.month >= c.month) {
                        @let cx = x(i) - (w - left - right) / (2.0 * (n - 1) as f64);
                        line x1=(at(cx)) x2=(at(cx)) y1=(top - 14.0) y2=(at(h - bottom)) stroke="#330072" stroke-width="1.5" stroke-dasharray="2 3" {}
                        text x=(at(cx + 4.0)) y=(top - 4.0) font-size="11" fill="#330072" { (shorten(c.text, 40)) }
                    }
                }
                polyline fill="none" stroke=(GREY) stroke-width="1.5" points=(line.join(" ")) {}
                @for (i, m) in &drawn {
                    @if let Some(p) = m.point {
                        @let (cx, cy) = (x(*i), y(p.value));
                        @let tip = format!("{}: {} ({})", m.figures.month.long(), value_words(measure, p.value), p.variation.words());
                        @match p.variation {
                            Variation::Common => circle cx=(at(cx)) cy=(at(cy)) r="3.5" fill=(GREY) { title { (tip) } },
                            Variation::Improvement => rect x=(at(cx - 5.0)) y=(at(cy - 5.0)) width="10" height="10" fill=(BLUE) { title { (tip) } },
                            Variation::Concern => polygon fill=(ORANGE)
                                points=(format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx, cy - 6.5, cx + 6.5, cy, cx, cy + 6.5, cx - 6.5, cy)) { title { (tip) } },
                        }
                    }
                }
                line x1=(left) x2=(left) y1=(top) y2=(at(h - bottom)) stroke="#425563" {}
                // The legend: shapes as well as colours.
                @let ly = h - 12.0;
                circle cx=(left) cy=(at(ly - 4.0)) r="3.5" fill=(GREY) {}
                text x=(left + 8.0) y=(at(ly)) font-size="11" { "common cause" }
                rect x=(left + 106.0) y=(at(ly - 9.0)) width="10" height="10" fill=(BLUE) {}
                text x=(left + 120.0) y=(at(ly)) font-size="11" { "improvement" }
                polygon fill=(ORANGE) points=(format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", left + 215.0, ly - 10.5, left + 221.5, ly - 4.0, left + 215.0, ly + 2.5, left + 208.5, ly - 4.0)) {}
                text x=(left + 226.0) y=(at(ly)) font-size="11" { "concern" }
                line x1=(left + 290.0) x2=(left + 310.0) y1=(at(ly - 4.0)) y2=(at(ly - 4.0)) stroke="#231f20" stroke-width="1.5" {}
                text x=(left + 314.0) y=(at(ly)) font-size="11" { "mean" }
                line x1=(left + 356.0) x2=(left + 376.0) y1=(at(ly - 4.0)) y2=(at(ly - 4.0)) stroke="#425563" stroke-dasharray="6 4" {}
                text x=(left + 380.0) y=(at(ly)) font-size="11" { "process limits" }
            }
            figcaption { (title) }
        }
    }
}

/// An axis label, with a decimal place when the axis spans little.
fn axis_words(measure: Measure, v: f64, span: f64) -> String {
    match measure.unit() {
        Unit::Proportion if span < 0.04 => format!("{:.1}%", v * 100.0),
        Unit::Proportion => format!("{:.0}%", v * 100.0),
        _ if span < 4.0 => format!("{v:.1}"),
        _ => format!("{v:.0}"),
    }
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The chart in words: the latest month, the mean and limits, and every special cause.
fn describe(measure: Measure, months: &[SpcMonth], hidden: &[Month]) -> String {
    let drawn: Vec<&SpcMonth> = months.iter().filter(|m| m.point.is_some()).collect();
    let mut out = Vec::new();
    if let (Some(first), Some(last)) = (months.first(), months.last()) {
        out.push(format!(
            "{} from {} to {}, {} month(s) drawn",
            measure.label(),
            first.figures.month.long(),
            last.figures.month.long(),
            drawn.len()
        ));
    }
    if let Some(p) = drawn.last().and_then(|m| m.point) {
        match p.limits {
            Some(l) => out.push(format!(
                "latest {}; mean {}, process limits {} to {}",
                value_words(measure, p.value),
                value_words(measure, l.centre),
                value_words(measure, l.lower),
                value_words(measure, l.upper)
            )),
            None => out.push(format!(
                "latest {}; too few points for limits",
                value_words(measure, p.value)
            )),
        }
    }
    let special: Vec<String> = drawn
        .iter()
        .filter_map(|m| {
            let p = m.point?;
            (p.variation != Variation::Common).then(|| {
                format!(
                    "{} ({}, {})",
                    m.figures.month.short(),
                    p.variation.code(),
                    p.signal.words()
                )
            })
        })
        .collect();
    if special.is_empty() {
        out.push("no special cause".into());
    } else {
        out.push(format!("special cause in {}", special.join(", ")));
    }
    if !hidden.is_empty() {
        let names: Vec<String> = hidden.iter().map(|m| m.short()).collect();
        out.push(format!(
            "not drawn, fewer than 8 patients: {}",
            names.join(", ")
        ));
    }
    format!("{}.", out.join("; "))
}

/// An icon: a shape with a letter, and the words it stands for beside it.
fn icon(shape: &str, colour: &str, letter: &str, words: &str) -> Markup {
    html! {
        span class="spc-icon" {
            svg width="26" height="26" viewBox="0 0 26 26" aria-hidden="true" focusable="false" {
                @match shape {
                    "square" => rect x="2" y="2" width="22" height="22" rx="3" fill=(colour) {},
                    "diamond" => polygon points="13,1 25,13 13,25 1,13" fill=(colour) {},
                    _ => circle cx="13" cy="13" r="11.5" fill=(colour) {},
                }
                text x="13" y="17.5" font-size="13" font-weight="700" text-anchor="middle" fill="#fff" { (letter) }
            }
            " " (words)
        }
    }
}

/// The chart's headline: its latest month's variation and, with a target, the assurance, each
/// as an icon with its words (Making Data Count's icons, read without their colours).
pub fn spc_icons(measure: Measure, months: &[SpcMonth], chart: &Chart) -> Markup {
    let latest = months.iter().rev().find_map(|m| m.point.map(|p| (m, p)));
    // Making Data Count marks the side with H or L; an arrow says the same without a letter.
    let high_low = |up: bool| if up { "↑" } else { "↓" };
    html! {
        p class="spc-icons" {
            @match latest {
                None => "No month to draw.",
                Some((_, p)) if p.limits.is_none() => {
                    (icon("circle", GREY, "–", "Too few points for limits (12 months are needed)."))
                }
                Some((m, p)) => {
                    // The side the special cause lies on, by the measure's direction.
                    @let better_is_up = measure.improvement() == Improvement::Increase;
                    @match p.variation {
                        Variation::Common => (icon("circle", GREY, "~", &format!("Common cause variation in {}: no sign of change.", m.figures.month.long()))),
                        Variation::Improvement => (icon("square", BLUE, high_low(better_is_up), &format!("Special cause, improvement, in {}: {}.", m.figures.month.long(), p.signal.words()))),
                        Variation::Concern => (icon("diamond", ORANGE, high_low(!better_is_up), &format!("Special cause, concern, in {}: {}.", m.figures.month.long(), p.signal.words()))),
                    }
                }
            }
            @if let Some(a) = chart.assurance {
                " "
                @match a {
                    Assurance::ConsistentPass => (icon("square", BLUE, "P", &format!("Assurance: {}.", a.words()))),
                    Assurance::ConsistentFail => (icon("diamond", ORANGE, "F", &format!("Assurance: {}.", a.words()))),
                    Assurance::Inconsistent => (icon("circle", GREY, "?", &format!("Assurance: {}.", a.words()))),
                }
            }
        }
    }
}
