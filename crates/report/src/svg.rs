//! Charts as files: the SVG of a chart on its own, and the same SVG rendered to PNG in process
//! by resvg with the bundled Liberation Sans, so no browser starts on a web request.

use maud::Markup;

/// Why a chart could not be made into a file.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The markup holds no `<svg>`.
    #[error("there is no chart to draw")]
    NoChart,
    /// The SVG could not be read.
    #[error("the chart could not be read: {0}")]
    Svg(#[from] resvg::usvg::Error),
    /// The chart has no width or height.
    #[error("the chart has no size")]
    NoSize,
    /// The PNG could not be encoded.
    #[error("the chart could not be encoded: {0}")]
    Png(#[source] Box<dyn std::error::Error + Send + Sync>),
}

const FONT_REGULAR: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Regular.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Bold.ttf");

/// The chart (the first `<svg>…</svg>` in `chart`) as a PNG at its own size, rendered in
/// process with the bundled fonts.
pub fn svg_png(chart: &Markup) -> Result<Vec<u8>, crate::ReportError> {
    Ok(png(&chart.0)?)
}

/// A chart as a standalone SVG file (its title, axes, legend and hover titles included).
pub fn svg_file(chart: &Markup) -> Result<String, crate::ReportError> {
    Ok(standalone_svg(&chart.0)?)
}

fn standalone_svg(html: &str) -> Result<String, ChartError> {
    let (Some(start), Some(end)) = (html.find("<svg"), html.find("</svg>")) else {
        return Err(ChartError::NoChart);
    };
    // A standalone SVG document needs its namespace (in a page, HTML supplies it), and a white
    // ground so it reads on any background.
    Ok(html[start..end + 6].replacen(
        "<svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" style=\"background:#fff\"",
        1,
    ))
}

fn png(html: &str) -> Result<Vec<u8>, ChartError> {
    let svg = standalone_svg(html)?;
    let mut fonts = resvg::usvg::fontdb::Database::new();
    fonts.load_font_data(FONT_REGULAR.to_vec());
    fonts.load_font_data(FONT_BOLD.to_vec());
    let options = resvg::usvg::Options {
        font_family: "Liberation Sans".into(),
        fontdb: std::sync::Arc::new(fonts),
        ..Default::default()
    };
    let tree = resvg::usvg::Tree::from_str(&svg, &options)?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or(ChartError::NoSize)?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| ChartError::Png(Box::new(e)))
}
