//! An SVG plot of latency by percentile, drawn the way HdrHistogram's
//! plotter draws it (the x axis is 1/(1-percentile) on a log scale, so the
//! tail gets room), so two runs can be compared by eye.

use std::fmt::Write;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One line of the plot: a name and its (1/(1-p), latency ms) points.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Points from [`crate::latency::Latencies::curve`].
    pub points: Vec<(f64, f64)>,
}

/// The plot as an SVG document.
pub fn percentile_plot(title: &str, series: &[Series<'_>]) -> String {
    let max_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(10.0_f64, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let max_y = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |inverse: f64| LEFT + inverse.max(1.0).log10() / max_x * plot_w;
    let y_of = |ms: f64| TOP + plot_h - ms / max_y * plot_h;
    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Axes and grid.
    for decade in 0..=(max_x as u32) {
        let x = x_of(10f64.powi(decade as i32));
        let label = percentile_label(decade);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    for step in 0..=5 {
        let ms = max_y * f64::from(step) / 5.0;
        let y = y_of(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            trim(ms)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">latency (ms)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(inverse, ms)| format!("{:.1},{:.1}", x_of(*inverse), y_of(*ms)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let legend_y = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            legend_y + 4.0,
            escape(s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The percentile at 10^decade on the 1/(1-p) axis: 0%, 90%, 99%, 99.9%...
fn percentile_label(decade: u32) -> String {
    if decade == 0 {
        return "0%".to_owned();
    }
    let nines = "9".repeat(decade as usize);
    match decade {
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        _ => format!("99.{}%", &nines[2..]),
    }
}

/// A round number at or above `value` for the top of the y axis.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * magnitude)
}

fn trim(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_is_an_svg_with_one_line_per_series() {
        let points = vec![(1.0, 0.5), (10.0, 1.0), (100.0, 2.0), (1000.0, 7.5)];
        let svg = percentile_plot(
            "produce <100b>",
            &[
                Series {
                    name: "produce ack",
                    points: points.clone(),
                },
                Series {
                    name: "end to end",
                    points,
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("99.9%") && svg.contains("produce &lt;100b&gt;"));
        assert_eq!(nice_ceiling(7.5), 10.0);
        assert_eq!(nice_ceiling(0.21), 0.25);
        assert_eq!(percentile_label(5), "99.999%");
    }
}
