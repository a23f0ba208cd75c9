//! Small SVG line charts: throughput against concurrency (log2 x axis), and time series in
//! stacked panels (the soak).

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

/// One panel of a time-series chart: named series of (minutes, value) points.
pub struct Panel {
    pub y_label: &'static str,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

const COLOURS: [&str; 4] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];

/// Panels stacked on one time axis (minutes), each scaled from zero to its own maximum.
pub fn panels_svg(title: &str, panels: &[Panel]) -> String {
    let (w, panel_h, left, right, top, gap) = (720.0, 180.0, 70.0, 190.0, 40.0, 40.0);
    let h = top + panels.len() as f64 * (panel_h + gap) + 10.0;
    let t_max = panels
        .iter()
        .flat_map(|p| {
            p.series
                .iter()
                .flat_map(|(_, pts)| pts.iter().map(|(t, _)| *t))
        })
        .fold(1.0_f64, f64::max);
    let px = |t: f64| left + t / t_max * (w - left - right);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"##,
        w / 2.0,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        let y0 = top + i as f64 * (panel_h + gap);
        let y_max = panel
            .series
            .iter()
            .flat_map(|(_, pts)| pts.iter().map(|(_, v)| *v))
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.15;
        let py = |v: f64| y0 + (1.0 - v / y_max) * panel_h;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{left}" y1="{y0}" x2="{left}" y2="{b}" stroke="#333"/>
<text x="16" y="{m}" text-anchor="middle" transform="rotate(-90 16 {m})">{}</text>
<text x="{}" y="{}" text-anchor="middle">minutes</text>"##,
            escape(panel.y_label),
            (left + w - right) / 2.0,
            y0 + panel_h + 30.0,
            b = y0 + panel_h,
            r = w - right,
            m = y0 + panel_h / 2.0,
        );
        for k in 0..=4 {
            let v = y_max * f64::from(k) / 4.0;
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
                w - right,
                left - 6.0,
                py(v) + 4.0,
                y = py(v),
            );
        }
        let prec = if t_max < 10.0 { 1 } else { 0 };
        for k in 0..=4 {
            let t = t_max * f64::from(k) / 4.0;
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{}" text-anchor="middle">{t:.prec$}</text>"##,
                px(t),
                y0 + panel_h + 15.0
            );
        }
        for (j, (name, points)) in panel.series.iter().enumerate() {
            let colour = COLOURS[j % COLOURS.len()];
            let line: Vec<String> = points
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", px(*t), py(*v)))
                .collect();
            let _ = writeln!(
                svg,
                r##"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>
<text x="{}" y="{:.1}" fill="{colour}">{}</text>"##,
                line.join(" "),
                w - right + 10.0,
                y0 + 14.0 + j as f64 * 16.0,
                escape(name)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
