//! SVG charts drawn by hand: a line chart over time and a claimed-vs-reproduced chart with
//! intervals. Plain SVG 1.1 elements only, no script, no external reference, so the HTML report
//! stays one self-contained file.
//!
//! Axes tick at round numbers (1, 2 or 5 × 10^k in the axis's display unit, [`Unit::axis`]) and
//! run from the outer ticks. Every data mark keeps its own place: in the claims chart the claim
//! sits in the upper lane of its row and the reproduced score in the lower one, so equal scores
//! never hide each other. A chart with nothing to draw is not drawn (`None`); the page says why.

use std::fmt::Write;

use super::escape;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 64.0;
/// Room for half of the last x tick label, which is centred on the plot's right edge.
const RIGHT: f64 = 32.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;
/// Baseline of the x tick labels below the plot: clear of the lowest y tick label.
const X_LABEL: f64 = 18.0;
/// Font sizes of the CSS (`svg .title`, `svg .tick`, `svg .legend`).
const TITLE_PX: f64 = 13.0;
const SMALL_PX: f64 = 11.0;

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

/// An axis: its range, from the first tick to the last, and the ticks with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<(f64, String)>,
}

impl Unit {
    /// One value on its own (a limit, a peak), not a tick.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Seconds if v >= 7200.0 => format!("{:.1} h", v / 3600.0),
            Unit::Seconds if v >= 120.0 => format!("{:.0} min", v / 60.0),
            Unit::Seconds => format!("{v:.0} s"),
            Unit::Bytes if v >= GIB => format!("{:.1} GiB", v / GIB),
            Unit::Bytes => format!("{:.0} MiB", v / MIB),
            Unit::Percent => format!("{v:.0} %"),
            Unit::Plain => plain(v),
        }
    }

    /// Round ticks covering `lo..=hi` (finite, `lo < hi`): the display unit is chosen from the
    /// range (seconds, minutes or hours; MiB or GiB), the step is 1, 2 or 5 × 10^k in that unit
    /// with at most five intervals, and the axis runs from the outer ticks. Every label carries
    /// the unit.
    pub fn axis(self, lo: f64, hi: f64) -> Axis {
        let (lo, hi) = drawable(lo, hi);
        let top = lo.abs().max(hi.abs());
        let (scale, suffix) = match self {
            Unit::Seconds if top >= 7200.0 => (3600.0, " h"),
            Unit::Seconds if top >= 120.0 => (60.0, " min"),
            Unit::Seconds => (1.0, " s"),
            Unit::Bytes if top >= GIB => (GIB, " GiB"),
            Unit::Bytes if top >= MIB => (MIB, " MiB"),
            Unit::Bytes if top >= 1024.0 => (1024.0, " KiB"),
            Unit::Bytes => (1.0, " B"),
            Unit::Percent => (1.0, " %"),
            Unit::Plain => (1.0, ""),
        };
        let g = Grid::covering(lo / scale, hi / scale);
        let ticks = (g.first..=g.last)
            .map(|i| {
                let n = i * g.m;
                (g.value(n) * scale, format!("{}{suffix}", g.plain_label(n)))
            })
            .collect();
        Axis {
            lo: g.value(g.first * g.m) * scale,
            hi: g.value(g.last * g.m) * scale,
            ticks,
        }
    }
}

const MIB: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;

/// Ticks `first * m * 10^k ..= last * m * 10^k`, one every `m * 10^k`.
#[derive(Debug, Clone, Copy)]
struct Grid {
    first: i64,
    last: i64,
    m: i64,
    k: i32,
}

impl Grid {
    /// The finest 1-2-5 grid that covers `lo..=hi` in at most five intervals.
    fn covering(lo: f64, hi: f64) -> Grid {
        // f64 spans at most about 600 decades; the clamp keeps `k` far from overflowing.
        let finest = (((hi - lo) / 5.0).log10().floor() as i32).clamp(-400, 400) - 1;
        // Forty decades always end the search; the bound only guards against a NaN or an
        // infinite span.
        for k in (finest..).take(40) {
            for m in [1, 2, 5] {
                let step = Grid {
                    first: 0,
                    last: 0,
                    m,
                    k,
                }
                .value(m);
                // A value within a billionth of a step of a tick is on it (0.6 / 0.2 is not 3).
                let first = (lo / step + 1e-9).floor();
                let last = (hi / step - 1e-9).ceil();
                if last - first <= 5.0 {
                    return Grid {
                        first: first as i64,
                        last: last as i64,
                        m,
                        k,
                    };
                }
            }
        }
        Grid {
            first: 0,
            last: 1,
            m: 1,
            k: 0,
        }
    }

    /// `n × 10^k`, as exactly as f64 allows (dividing by an exact power of ten for `k < 0`).
    fn value(self, n: i64) -> f64 {
        if self.k >= 0 {
            n as f64 * 10f64.powi(self.k)
        } else {
            n as f64 / 10f64.powi(-self.k)
        }
    }

    /// A tick's number: thousands as `k`, `M`, `G`, `T`; huge numbers and tiny steps in scientific
    /// notation.
    fn plain_label(self, n: i64) -> String {
        if n == 0 {
            return "0".into();
        }
        let top = self.first.abs().max(self.last.abs()) as f64 * self.m as f64;
        let magnitude = top.log10() + f64::from(self.k);
        if magnitude >= 15.0 || self.k < -4 {
            scientific(n, self.k)
        } else if magnitude >= 5.0 {
            let p = ((magnitude / 3.0).floor() as i32).clamp(1, 4);
            let suffix = ["k", "M", "G", "T"][p as usize - 1];
            format!("{}{suffix}", decimal(n, self.k - 3 * p))
        } else {
            decimal(n, self.k)
        }
    }
}

/// `n × 10^k` in decimal, with `-k` digits after the point (zero is `0`).
fn decimal(n: i64, k: i32) -> String {
    if n == 0 {
        return "0".into();
    }
    if k >= 0 {
        return format!("{n}{}", "0".repeat(k as usize));
    }
    let d = k.unsigned_abs() as usize;
    let digits = format!("{:0>width$}", n.unsigned_abs(), width = d + 1);
    let (int, frac) = digits.split_at(digits.len() - d);
    format!("{}{int}.{frac}", if n < 0 { "-" } else { "" })
}

/// `n × 10^k` as `2e-5`, `1.5e-4`.
fn scientific(n: i64, k: i32) -> String {
    if n == 0 {
        return "0".into();
    }
    let digits = n.unsigned_abs().to_string();
    let digits = digits.trim_end_matches('0');
    let exp = k + (n.unsigned_abs().to_string().len() as i32 - 1);
    let sign = if n < 0 { "-" } else { "" };
    match digits.split_at(1) {
        (d, "") => format!("{sign}{d}e{exp}"),
        (d, rest) => format!("{sign}{d}.{rest}e{exp}"),
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

/// A generous estimate of the width of `text` at `px` (system sans-serif fonts average about
/// 0.55 em a character; DejaVu Sans, Debian's default, is among the widest).
fn text_width(text: &str, px: f64) -> f64 {
    text.chars().count() as f64 * px * 0.62
}

/// `text` cut to about `width` at `px`, with an ellipsis when it was cut.
fn fit(text: &str, width: f64, px: f64) -> String {
    let max = (width / (px * 0.62)).floor().max(2.0) as usize;
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// A line chart with `x` and `y` axes from the data (y from 0 when every value is ≥ 0, up to
/// `y_max` when given), with a legend of the lines. `None` when no line has a point: an empty
/// box tells a reader nothing, the page says why instead.
pub fn line_chart(
    title: &str,
    x_unit: Unit,
    y_unit: Unit,
    lines: &[Line<'_>],
    y_max: Option<f64>,
) -> Option<String> {
    let drawn: Vec<&Line<'_>> = lines.iter().filter(|l| !l.points.is_empty()).collect();
    if drawn.is_empty() {
        return None;
    }
    let all = || drawn.iter().flat_map(|l| l.points.iter());
    let (x0, x1) = bounds(all().map(|p| p.0));
    let (mut y0, mut y1) = bounds(all().map(|p| p.1));
    if y0 >= 0.0 {
        y0 = 0.0;
    }
    if let Some(m) = y_max {
        y1 = y1.max(m);
    }
    let x = x_unit.axis(x0, x1);
    let y = y_unit.axis(y0, y1);

    // The legend shares the title's row when both fit, right-aligned; otherwise it gets a row
    // of its own below the title, and the plot starts lower.
    const SWATCH: f64 = 18.0;
    const GAP: f64 = 16.0;
    let entry = |l: &Line<'_>| SWATCH + 4.0 + text_width(l.label, SMALL_PX);
    let legend_w: f64 =
        drawn.iter().map(|l| entry(l)).sum::<f64>() + GAP * (drawn.len() - 1) as f64;
    let title_end = LEFT + text_width(title, TITLE_PX) * 1.1;
    let (legend_y, top) = if title_end + 2.0 * GAP + legend_w <= W - RIGHT {
        (16.0, TOP)
    } else {
        (34.0, TOP + 18.0)
    };

    let px = |v: f64| LEFT + (v - x.lo) / (x.hi - x.lo) * (W - LEFT - RIGHT);
    let py = |v: f64| H - BOTTOM - (v - y.lo) / (y.hi - y.lo) * (H - top - BOTTOM);
    let mut s = open(title, W, H);
    axes(&mut s, &x, &y, top, &px, &py);
    for l in &drawn {
        let pts: Vec<String> = l
            .points
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            escape(l.color),
            pts.join(" ")
        );
        // A lone sample is a dot, not an invisible line.
        if let [(a, b)] = l.points {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}" class="mark"/>"#,
                px(*a),
                py(*b),
                escape(l.color)
            );
        }
    }
    let mut at = W - RIGHT - legend_w;
    for l in &drawn {
        let _ = write!(
            s,
            r#"<rect x="{at:.1}" y="{:.1}" width="{SWATCH}" height="3" fill="{c}" class="key"/><text x="{:.1}" y="{legend_y}" fill="{c}" class="legend">{}</text>"#,
            legend_y - 5.5,
            at + SWATCH + 4.0,
            escape(l.label),
            c = escape(l.color),
        );
        at += entry(l) + GAP;
    }
    s.push_str("</svg>");
    Some(s)
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

/// Claimed (hollow diamond) vs reproduced (dot, with its interval as a bar), one row per task;
/// `None` when there is no task. Each row has two lanes, the claim above its centre and the
/// reproduced score below, so a claim equal to its score is still two visible marks.
pub fn claims_chart(title: &str, tasks: &[TaskBar<'_>]) -> Option<String> {
    if tasks.is_empty() {
        return None;
    }
    const ROW: f64 = 32.0;
    const CLAIM: f64 = -8.0;
    const SCORE: f64 = 7.0;
    const MAX_LABEL: f64 = 190.0;
    // Below the plot: the tick labels, then the legend.
    const UNDER: f64 = 48.0;
    let h = TOP + ROW * tasks.len() as f64 + UNDER;
    let longest = tasks
        .iter()
        .map(|t| text_width(t.task, SMALL_PX))
        .fold(0.0, f64::max);
    let left = (longest.min(MAX_LABEL) + 16.0).max(LEFT);
    let mut s = open(title, W, h);

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
    let (x0, x1) = bounds(values);
    let x = Unit::Plain.axis(x0, x1);
    let px = |v: f64| left + (v - x.lo) / (x.hi - x.lo) * (W - left - RIGHT);
    let bottom = TOP + ROW * tasks.len() as f64;
    for (v, label) in &x.ticks {
        let _ = write!(
            s,
            r#"<line x1="{p:.1}" y1="{TOP}" x2="{p:.1}" y2="{bottom}" class="grid"/><text x="{p:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            bottom + X_LABEL,
            escape(label),
            p = px(*v)
        );
    }
    for (i, t) in tasks.iter().enumerate() {
        let y = TOP + ROW * (i as f64 + 0.5);
        let (yc, yr) = (y + CLAIM, y + SCORE);
        let color = match t.ok {
            Some(false) => "#c0392b",
            Some(true) => "#1e8449",
            None => "#555555",
        };
        let label = fit(t.task, MAX_LABEL, SMALL_PX);
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="tick">{}{}</text>"#,
            left - 10.0,
            y + 4.0,
            if label != t.task {
                format!("<title>{}</title>", escape(t.task))
            } else {
                String::new()
            },
            escape(&label)
        );
        if let Some([lo, hi]) = t.interval {
            let _ = write!(
                s,
                r#"<line x1="{:.1}" y1="{yr:.1}" x2="{:.1}" y2="{yr:.1}" stroke="{color}" stroke-width="3" class="interval"/>"#,
                px(lo),
                px(hi)
            );
        }
        if t.reproduced.is_finite() {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{yr:.1}" r="5" fill="{color}" class="reproduced"/>"#,
                px(t.reproduced)
            );
        } else {
            // The subnet's inf (a failed TEXT_LOSS gate): off the scale, said in words.
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{color}" class="reproduced tick">{} →</text>"#,
                W - 4.0,
                yr + 4.0,
                plain(t.reproduced)
            );
        }
        if let Some(c) = t.claimed {
            s.push_str(&diamond(px(c), yc, "claimed"));
        }
    }

    // The legend, drawn with the chart's own shapes.
    let ly = h - 10.0;
    let mut at = left;
    s.push_str(&diamond(at + 6.0, ly - 4.0, "key"));
    let claimed = "claimed";
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{ly}" class="legend">{claimed}</text>"#,
        at + 18.0
    );
    at += 18.0 + text_width(claimed, SMALL_PX) + 20.0;
    let reproduced = "reproduced, with its 95 % interval";
    let _ = write!(
        s,
        r##"<g class="key"><line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#555555" stroke-width="3"/><circle cx="{:.1}" cy="{y:.1}" r="5" fill="#555555"/></g><text x="{:.1}" y="{ly}" class="legend">{reproduced}</text>"##,
        at,
        at + 24.0,
        at + 12.0,
        at + 30.0,
        y = ly - 4.0
    );
    s.push_str("</svg>");
    Some(s)
}

/// The claim's hollow diamond centred on `(x, y)`.
fn diamond(x: f64, y: f64, class: &str) -> String {
    const R: f64 = 6.0;
    format!(
        r##"<path d="M{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} Z" fill="#ffffff" stroke="#222222" stroke-width="1.5" class="{class}"/>"##,
        y - R,
        x + R,
        y + R,
        x - R
    )
}

fn open(title: &str, w: f64, h: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}"><title>{}</title><text x="{LEFT}" y="16" class="title">{}</text>"#,
        escape(title),
        escape(title)
    )
}

fn axes(
    s: &mut String,
    x: &Axis,
    y: &Axis,
    top: f64,
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    let bottom = H - BOTTOM;
    for (v, label) in &y.ticks {
        let at = py(*v);
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{at:.1}" x2="{}" y2="{at:.1}" class="grid"/><text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            at + 4.0,
            escape(label)
        );
    }
    for (v, label) in &x.ticks {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            px(*v),
            bottom + X_LABEL,
            escape(label)
        );
    }
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" class="axis"/><line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" class="axis"/>"#,
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

/// An empty or degenerate range made drawable: no value (or only zero) gives `0..1`, one value
/// (or a range too narrow for its magnitude) a tenth of it either side.
fn drawable(lo: f64, hi: f64) -> (f64, f64) {
    let magnitude = lo.abs().max(hi.abs());
    if !lo.is_finite() || !hi.is_finite() || lo > hi || magnitude == 0.0 {
        return (0.0, 1.0);
    }
    if !(hi - lo).is_finite() {
        // A span past f64's range: a quarter of the range either side still covers the data
        // a chart can be asked to draw, and its ticks stay finite.
        return (lo.max(f64::MIN / 4.0), hi.min(f64::MAX / 4.0));
    }
    if hi - lo <= magnitude * 1e-9 {
        let d = magnitude * 0.1;
        return (lo - d, hi + d);
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(a: &Axis) -> Vec<&str> {
        a.ticks.iter().map(|t| t.1.as_str()).collect()
    }

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
    fn ticks_are_round_and_the_axis_runs_from_the_outer_ones() {
        let a = Unit::Plain.axis(0.0, 0.9);
        let values: Vec<f64> = a.ticks.iter().map(|t| t.0).collect();
        assert_eq!(values, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(labels(&a), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));

        // The ranges that gave 0.225 and 50.75 as ticks.
        assert_eq!(
            labels(&Unit::Plain.axis(0.18, 0.27)),
            ["0.18", "0.20", "0.22", "0.24", "0.26", "0.28"]
        );
        assert_eq!(
            labels(&Unit::Plain.axis(1.0, 201.0)),
            ["0", "50", "100", "150", "200", "250"]
        );
        assert_eq!(
            labels(&Unit::Percent.axis(0.0, 100.0)),
            ["0 %", "20 %", "40 %", "60 %", "80 %", "100 %"]
        );
        assert_eq!(
            labels(&Unit::Plain.axis(0.6, 0.8)),
            ["0.60", "0.65", "0.70", "0.75", "0.80"],
            "0.6 / 0.05 is not quite 12 in f64, and the axis does not grow for it"
        );
        assert_eq!(
            labels(&Unit::Plain.axis(-0.3, 0.4)),
            ["-0.4", "-0.2", "0", "0.2", "0.4"]
        );
    }

    #[test]
    fn time_and_bytes_pick_their_display_unit_from_the_range() {
        assert_eq!(
            labels(&Unit::Seconds.axis(0.0, 45.0)),
            ["0 s", "10 s", "20 s", "30 s", "40 s", "50 s"]
        );
        assert_eq!(
            labels(&Unit::Seconds.axis(0.0, 5400.0)),
            ["0 min", "20 min", "40 min", "60 min", "80 min", "100 min"]
        );
        assert_eq!(
            labels(&Unit::Seconds.axis(0.0, 86400.0)),
            ["0 h", "5 h", "10 h", "15 h", "20 h", "25 h"]
        );
        let a = Unit::Seconds.axis(0.0, 5400.0);
        assert_eq!(a.hi, 6000.0, "the axis ends at the last tick, in seconds");
        assert_eq!(
            labels(&Unit::Bytes.axis(0.0, 900.0 * MIB)),
            [
                "0 MiB", "200 MiB", "400 MiB", "600 MiB", "800 MiB", "1000 MiB"
            ]
        );
        assert_eq!(
            labels(&Unit::Bytes.axis(0.0, 1.4 * GIB)),
            ["0 GiB", "0.5 GiB", "1.0 GiB", "1.5 GiB"]
        );
        assert_eq!(Unit::Bytes.axis(0.0, 1.4 * GIB).hi, 1.5 * GIB);
        assert_eq!(
            labels(&Unit::Bytes.axis(0.0, 80.0 * GIB)),
            ["0 GiB", "20 GiB", "40 GiB", "60 GiB", "80 GiB"]
        );
    }

    #[test]
    fn every_label_is_short_and_round() {
        let ranges = [
            (0.0, 0.9),
            (0.0, 1e-6),
            (2e-5, 9e-5),
            (0.0, 2.5),
            (0.18, 0.27),
            (0.001, 0.0013),
            (0.0, 7.3),
            (1.0, 201.0),
            (0.0, 50.75),
            (0.0, 9999.0),
            (0.0, 123_456.0),
            (0.0, 4.2e9),
            (-3.0, 17.0),
            (0.7, 0.7),
            (0.0, 0.0),
            (-1e308, 1e308),
            (f64::NAN, 1.0),
            (f64::INFINITY, f64::NEG_INFINITY),
        ];
        for unit in [Unit::Plain, Unit::Seconds, Unit::Bytes, Unit::Percent] {
            for (lo, hi) in ranges {
                let a = unit.axis(lo, hi);
                assert!(
                    (3..=6).contains(&a.ticks.len()),
                    "{unit:?} {lo}..{hi}: {:?}",
                    a.ticks
                );
                let (l, h) = drawable(lo, hi);
                let slack = (h - l) * 1e-9;
                assert!(
                    a.lo <= l + slack && a.hi >= h - slack,
                    "{unit:?} {lo}..{hi}: {a:?}"
                );
                for (v, label) in &a.ticks {
                    assert!(v.is_finite(), "{unit:?} {lo}..{hi}: {a:?}");
                    // Only a range past any chart's data (±1e308) gets ten characters.
                    let short = if hi > 1e100 { 10 } else { 8 };
                    assert!(
                        label.chars().count() <= short,
                        "{unit:?} {lo}..{hi}: {label:?} is long"
                    );
                    assert!(
                        !label.contains("50.75") && !label.contains("0.225"),
                        "{label}"
                    );
                    let number = label.split([' ', 'e']).next().unwrap();
                    let digits: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
                    let digits = digits.trim_matches('0');
                    assert!(
                        digits.len() <= 2,
                        "{unit:?} {lo}..{hi}: {label:?} is not a round number"
                    );
                }
            }
        }
        assert_eq!(labels(&Unit::Plain.axis(0.0, 123_456.0))[1], "50k");
        assert_eq!(
            labels(&Unit::Plain.axis(2e-5, 9e-5)),
            ["2e-5", "4e-5", "6e-5", "8e-5", "1e-4"]
        );
        assert_eq!(scientific(15, -5), "1.5e-4");
        assert_eq!(decimal(-5, -2), "-0.05");
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
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("mem &lt;&amp;&gt;") && svg.contains("a&lt;b"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(svg.contains(">10 s<"), "{svg}");
        assert!(svg.contains(r#"class="key""#), "the legend has a swatch");
        let empty = Line {
            label: "x",
            points: &[],
            color: "#000000",
        };
        assert_eq!(
            line_chart("x", Unit::Seconds, Unit::Plain, &[empty], None),
            None
        );
        assert_eq!(line_chart("x", Unit::Seconds, Unit::Plain, &[], None), None);
    }

    #[test]
    fn a_long_legend_moves_below_the_title() {
        let pts = [(0.0, 1.0), (10.0, 3.0)];
        let line = |label| Line {
            label,
            points: &pts,
            color: "#123456",
        };
        let short = line_chart("t", Unit::Seconds, Unit::Plain, &[line("a")], None).unwrap();
        assert!(short.contains(r#"y="16" fill"#), "{short}");
        let long = line_chart(
            "A rather long title for a chart",
            Unit::Seconds,
            Unit::Plain,
            &[
                line("first series label"),
                line("second series label"),
                line("third"),
            ],
            None,
        )
        .unwrap();
        assert!(long.contains(r#"y="34" fill"#), "{long}");
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
        let svg = claims_chart("claims", &tasks).unwrap();
        assert_eq!(svg.matches(r#"class="reproduced""#).count(), 2);
        assert_eq!(svg.matches(r#"class="claimed""#).count(), 1);
        assert_eq!(svg.matches(r#"class="interval""#).count(), 1);
        assert!(svg.contains("#c0392b"));
        assert!(!svg.contains("NaN"));
        assert!(
            !svg.contains('●') && !svg.contains('◇'),
            "the legend is shapes"
        );
        assert_eq!(svg.matches(r#"class="key""#).count(), 2);
        assert_eq!(claims_chart("claims", &[]), None);

        // An infinite score is written out at the edge, never drawn at "inf".
        let inf = [TaskBar {
            task: "FINEWEB",
            claimed: Some(2.5),
            reproduced: f64::INFINITY,
            interval: None,
            ok: Some(false),
        }];
        let svg = claims_chart("claims", &inf).unwrap();
        assert!(svg.contains("inf →"), "{svg}");
        assert!(!svg.contains("=\"inf\"") && !svg.contains("NaN"), "{svg}");
    }

    #[test]
    fn an_equal_claim_and_score_are_two_marks_in_two_lanes() {
        let tasks = [TaskBar {
            task: "a task name far too long to fit in the room left of the plot",
            claimed: Some(0.5),
            reproduced: 0.5,
            interval: None,
            ok: Some(true),
        }];
        let svg = claims_chart("claims", &tasks).unwrap();
        let attr = |class: &str, name: &str| -> f64 {
            let at = svg.find(&format!(r#"class="{class}""#)).unwrap();
            let start = svg[..at].rfind('<').unwrap();
            let tag = &svg[start..at];
            let v = tag.split(&format!(" {name}=\"")).nth(1).unwrap();
            v[..v.find('"').unwrap()].parse().unwrap()
        };
        let dot_top = attr("reproduced", "cy") - 5.0;
        let path = &svg[svg.find(r#"class="claimed""#).unwrap() - 120..];
        let d = path.split("d=\"M").nth(1).unwrap();
        let ys: Vec<f64> = d
            .split(['L', 'Z', '"'])
            .filter_map(|p| p.split_whitespace().nth(1)?.parse().ok())
            .collect();
        let diamond_bottom = ys.iter().cloned().fold(f64::MIN, f64::max);
        assert!(
            diamond_bottom < dot_top,
            "the diamond ({diamond_bottom}) ends above the dot ({dot_top}): {svg}"
        );
        assert!(
            svg.contains('…') && svg.contains("<title>a task name far"),
            "{svg}"
        );
    }
}
