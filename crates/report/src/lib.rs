//! crest's views, shared by the web app and the command line: the page layout and its
//! components ([`html`]), charts as SVG with text alternatives and as PNG ([`charts`]), and the
//! annual report with its published tables ([`annual`]). Everything here turns figures into
//! documents; it computes no statistics of its own (those are `crest_stats`).

pub mod annual;
pub mod charts;
pub mod html;
