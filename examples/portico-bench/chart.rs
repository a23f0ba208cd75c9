//! A small SVG line chart of throughput against concurrency (log2 x axis).

use std::fmt::Write;

use crate::report::Report;

pub fn throughput_svg(title: &str, reports: &[Report]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 400.0, 70.0, 20.0, 40.0, 50.0);
    let max_rps = reports
        .iter()
        .map(Report::throughput)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let xs: Vec<f64> = reports
        .iter()
        .map(|r| (r.connections.max(1) as f64).log2())
        .collect();
    let (x_min, x_max) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            .max(1.0),
    );
    let span = (x_max - x_min).max(1.0);
    let px = |x: f64| left + (x - x_min) / span * (w - left - right);
    let py = |y: f64| top + (1.0 - y / max_rps) * (h - top - bottom);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">concurrent connections</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">requests per second</text>
"##,
        w / 2.0,
        escape(title),
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        (left + w - right) / 2.0,
        h - 12.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0,
    );
    for i in 0..=4 {
        let y = max_rps * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{py}" x2="{}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{:.0}</text>"##,
            w - right,
            left - 6.0,
            py(y) + 4.0,
            y,
            py = py(y),
        );
    }
    let points: Vec<String> = reports
        .iter()
        .zip(&xs)
        .map(|(r, x)| format!("{:.1},{:.1}", px(*x), py(r.throughput())))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{}"/>"##,
        points.join(" ")
    );
    for (r, x) in reports.iter().zip(&xs) {
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#2563eb"/><text x="{:.1}" y="{}" text-anchor="middle">{}</text>"##,
            px(*x),
            py(r.throughput()),
            px(*x),
            h - bottom + 18.0,
            r.connections
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
