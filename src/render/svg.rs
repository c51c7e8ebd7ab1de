//! SVG charts drawn by hand: a line chart over time and a claimed-vs-reproduced chart with
//! intervals. Plain SVG 1.1 elements only, no script, no external reference, so the HTML report
//! stays one self-contained file.

use std::fmt::Write;

use super::escape;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;

/// One line of a line chart.
pub struct Line<'a> {
    pub label: &'a str,
    pub points: &'a [(f64, f64)],
    pub color: &'a str,
}

/// How an axis prints its values.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// Elapsed seconds, printed as `45 s`, `12 min`, `3.5 h`.
    Seconds,
    /// Bytes, printed in GiB or MiB.
    Bytes,
    Percent,
    /// A plain number.
    Plain,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Seconds if v >= 7200.0 => format!("{:.1} h", v / 3600.0),
            Unit::Seconds if v >= 120.0 => format!("{:.0} min", v / 60.0),
            Unit::Seconds => format!("{v:.0} s"),
            Unit::Bytes if v >= f64::from(1u32 << 30) => {
                format!("{:.1} GiB", v / f64::from(1u32 << 30))
            }
            Unit::Bytes => format!("{:.0} MiB", v / f64::from(1u32 << 20)),
            Unit::Percent => format!("{v:.0} %"),
            Unit::Plain => plain(v),
        }
    }
}

/// A number in at most four significant digits.
pub fn plain(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.2e}");
    }
    let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A line chart with `x` and `y` axes from the data (y from 0 when every value is ≥ 0, up to
/// `y_max` when given). With no point at all it says so in place of the lines.
pub fn line_chart(
    title: &str,
    x_unit: Unit,
    y_unit: Unit,
    lines: &[Line<'_>],
    y_max: Option<f64>,
) -> String {
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let mut s = open(title);
    if all().next().is_none() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" class="empty">no samples</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return s;
    }
    let (mut x0, mut x1) = bounds(all().map(|p| p.0));
    let (mut y0, mut y1) = bounds(all().map(|p| p.1));
    if y0 >= 0.0 {
        y0 = 0.0;
    }
    if let Some(m) = y_max {
        y1 = y1.max(m);
    }
    widen(&mut x0, &mut x1);
    widen(&mut y0, &mut y1);
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM);
    axes(&mut s, x0, x1, y0, y1, x_unit, y_unit, &px, &py);
    for (i, l) in lines.iter().enumerate() {
        if l.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = l
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            escape(l.color),
            pts.join(" ")
        );
        // A lone sample is a dot, not an invisible line.
        if l.points.len() == 1 {
            let (x, y) = l.points[0];
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                px(x),
                py(y),
                escape(l.color)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="14" text-anchor="end" fill="{}" class="legend">{}</text>"#,
            W - RIGHT - 170.0 * i as f64,
            escape(l.color),
            escape(l.label)
        );
    }
    s.push_str("</svg>");
    s
}

/// One task of the claims chart.
pub struct TaskBar<'a> {
    pub task: &'a str,
    pub claimed: Option<f64>,
    pub reproduced: f64,
    pub interval: Option<[f64; 2]>,
    /// `Some(false)`: outside tolerance.
    pub ok: Option<bool>,
}

/// Claimed (hollow diamond) vs reproduced (dot, with its interval as a bar), one row per task.
pub fn claims_chart(title: &str, tasks: &[TaskBar<'_>]) -> String {
    let row = 28.0;
    let h = TOP + BOTTOM + row * tasks.len().max(1) as f64;
    let left = 150.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {W} {h}" width="{W}" height="{h}"><title>{}</title><text x="{LEFT}" y="14" class="title">{}</text>"#,
        escape(title),
        escape(title)
    );
    if tasks.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" class="empty">no scores</text></svg>"#,
            W / 2.0,
            h / 2.0
        );
        return s;
    }
    let values = tasks.iter().flat_map(|t| {
        [Some(t.reproduced), t.claimed]
            .into_iter()
            .chain(
                t.interval
                    .into_iter()
                    .flat_map(|i| [Some(i[0]), Some(i[1])]),
            )
            .flatten()
    });
    let (mut x0, mut x1) = bounds(values);
    widen(&mut x0, &mut x1);
    let pad = (x1 - x0) * 0.05;
    let (x0, x1) = (x0 - pad, x1 + pad);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (W - left - RIGHT);
    let bottom = h - BOTTOM;
    for i in 0..=4 {
        let v = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" class="grid"/><text x="{x:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            bottom + 16.0,
            plain(v),
            x = px(v)
        );
    }
    for (i, t) in tasks.iter().enumerate() {
        let y = TOP + row * (i as f64 + 0.5);
        let color = match t.ok {
            Some(false) => "#c0392b",
            Some(true) => "#1e8449",
            None => "#555555",
        };
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            left - 8.0,
            y + 4.0,
            escape(t.task)
        );
        if let Some([lo, hi]) = t.interval {
            let _ = write!(
                s,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="3" class="interval"/>"#,
                px(lo),
                px(hi)
            );
        }
        if t.reproduced.is_finite() {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{y:.1}" r="5" fill="{color}" class="reproduced"/>"#,
                px(t.reproduced)
            );
        } else {
            // The subnet's inf (a failed TEXT_LOSS gate): off the scale, said in words.
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{color}" class="reproduced tick">{} →</text>"#,
                W - RIGHT,
                y + 4.0,
                plain(t.reproduced)
            );
        }
        if let Some(c) = t.claimed {
            let cx = px(c);
            let _ = write!(
                s,
                r##"<path d="M{:.1} {:.1} L{:.1} {y:.1} L{:.1} {:.1} L{:.1} {y:.1} Z" fill="none" stroke="#222222" stroke-width="1.5" class="claimed"/>"##,
                cx,
                y - 7.0,
                cx + 7.0,
                cx,
                y + 7.0,
                cx - 7.0
            );
        }
    }
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{}" class="legend">● reproduced (bar: 95 % interval)   ◇ claimed</text></svg>"##,
        h - 4.0
    );
    s
}

fn open(title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}"><title>{}</title><text x="{LEFT}" y="14" class="title">{}</text>"#,
        escape(title),
        escape(title)
    )
}

#[allow(clippy::too_many_arguments)]
fn axes(
    s: &mut String,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    x_unit: Unit,
    y_unit: Unit,
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    let bottom = H - BOTTOM;
    for i in 0..=4 {
        let v = y0 + (y1 - y0) * f64::from(i) / 4.0;
        let y = py(v);
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&y_unit.format(v))
        );
    }
    for i in 0..=4 {
        let v = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            px(v),
            bottom + 16.0,
            escape(&x_unit.format(v))
        );
    }
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" class="axis"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/>"#,
        W - RIGHT
    );
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// Makes an empty or degenerate range drawable.
fn widen(lo: &mut f64, hi: &mut f64) {
    if !lo.is_finite() || !hi.is_finite() {
        (*lo, *hi) = (0.0, 1.0);
    } else if *hi - *lo < 1e-12 {
        let d = if *lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        *lo -= d;
        *hi += d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_units_read_well() {
        assert_eq!(plain(0.7), "0.7");
        assert_eq!(plain(2.3126), "2.313");
        assert_eq!(plain(1234.0), "1234");
        assert_eq!(plain(1e-6), "1.00e-6");
        assert_eq!(Unit::Seconds.format(90.0), "90 s");
        assert_eq!(Unit::Seconds.format(600.0), "10 min");
        assert_eq!(Unit::Seconds.format(86400.0), "24.0 h");
        assert_eq!(Unit::Bytes.format(f64::from(3u32 << 29)), "1.5 GiB");
        assert_eq!(Unit::Bytes.format(f64::from(5u32 << 20)), "5 MiB");
    }

    #[test]
    fn a_line_chart_draws_each_series_and_escapes_labels() {
        let pts = [(0.0, 1.0), (10.0, 3.0)];
        let svg = line_chart(
            "mem <&>",
            Unit::Seconds,
            Unit::Bytes,
            &[Line {
                label: "a<b",
                points: &pts,
                color: "#123456",
            }],
            None,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("mem &lt;&amp;&gt;") && svg.contains("a&lt;b"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let empty = line_chart("x", Unit::Seconds, Unit::Plain, &[], None);
        assert!(empty.contains("no samples") && !empty.contains("<polyline"));
    }

    #[test]
    fn the_claims_chart_marks_each_task() {
        let tasks = [
            TaskBar {
                task: "mmlu",
                claimed: Some(0.9),
                reproduced: 0.7,
                interval: Some([0.4, 0.9]),
                ok: Some(false),
            },
            TaskBar {
                task: "gsm",
                claimed: None,
                reproduced: 0.7,
                interval: None,
                ok: None,
            },
        ];
        let svg = claims_chart("claims", &tasks);
        assert_eq!(svg.matches(r#"class="reproduced""#).count(), 2);
        assert_eq!(svg.matches(r#"class="claimed""#).count(), 1);
        assert_eq!(svg.matches(r#"class="interval""#).count(), 1);
        assert!(svg.contains("#c0392b"));
        assert!(!svg.contains("NaN"));

        // An infinite score is written out at the edge, never drawn at "inf".
        let inf = [TaskBar {
            task: "FINEWEB",
            claimed: Some(2.5),
            reproduced: f64::INFINITY,
            interval: None,
            ok: Some(false),
        }];
        let svg = claims_chart("claims", &inf);
        assert!(svg.contains("inf →"), "{svg}");
        assert!(!svg.contains("=\"inf\"") && !svg.contains("NaN"), "{svg}");
    }
}
