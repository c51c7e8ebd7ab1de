//! report.html in a real browser, without Docker: the worst-case runs of `tests/fixtures/report/`
//! (a long team name, long digests and paths, many findings with long hints, claims equal to
//! their scores, an infinite score; `gpu/` with GPU samples, `cpu/` a dry run without a GPU or a
//! loss) rendered by `reprobox::render::html` and measured in headless Chromium at 1280 and
//! 800 px.
//!
//! The measuring is a `<script>` this test adds to a copy of the page (the page itself has none:
//! it is self-contained and script-free). It writes what it found into the DOM, which
//! `--dump-dom` prints: the document's width against the window's, every block whose content is
//! wider than it without being a scroll box, and, in each chart, every pair of marks or labels
//! whose boxes overlap and any that leaves the chart.
//!
//! docs/report-html.png is the `gpu/` page at 1280 px. After a change to the page, regenerate it
//! with `REPROBOX_UPDATE_SCREENSHOT=1 cargo nextest run --test report_html` and commit it. To
//! look at the other screenshots (both runs at 800 and 1280 px, 3000 px tall) and the pages,
//! name a directory for them in `REPROBOX_SCREENSHOT_DIR`.
//!
//! Chromium is Debian's package, which `scripts/setup` installs; without it these tests fail.

use std::path::{Path, PathBuf};

use reprobox::pipeline::Report;
use reprobox::render::{RunSeries, html};
use serde::Deserialize;

#[path = "support/chromium.rs"]
mod chromium;

const WIDTHS: [u32; 2] = [1280, 800];

/// The test-only measuring script (see the module comment).
const MEASURE: &str = r##"<script>
addEventListener('load', () => {
  const r = {
    width: innerWidth,
    doc_scroll_width: document.documentElement.scrollWidth,
    doc_client_width: document.documentElement.clientWidth,
    overflowing: [], scrolling: [], overlapping: [], outside: [], svgs: 0, marks: 0,
  };
  const name = e => {
    let n = e.tagName.toLowerCase();
    if (e.id) n += '#' + e.id;
    const c = e.getAttribute('class');
    if (c) n += '.' + c.trim().split(/\s+/).join('.');
    const t = (e.textContent || '').trim().slice(0, 60);
    return t ? n + ' "' + t + '"' : n;
  };
  for (const e of document.querySelectorAll('main, main *')) {
    if (e.closest('svg')) continue;
    const cs = getComputedStyle(e);
    // Inline boxes have no width of their own; their block is measured.
    if (cs.display === 'inline' || cs.display === 'none') continue;
    const scrolls = cs.overflowX === 'auto' || cs.overflowX === 'scroll';
    if (e.scrollWidth > e.clientWidth + 1) {
      (scrolls ? r.scrolling : r.overflowing).push(name(e) + ': ' + e.scrollWidth + ' > ' + e.clientWidth);
    }
  }
  for (const svg of document.querySelectorAll('svg')) {
    r.svgs++;
    const box = svg.getBoundingClientRect();
    const title = svg.querySelector('title').textContent;
    const items = [...svg.querySelectorAll('.mark, .reproduced, .claimed, .key, text')]
      .map(e => [e, e.getBoundingClientRect()]);
    r.marks += items.length;
    for (const [e, b] of items) {
      if (b.width < 1 || b.height < 1) {
        r.outside.push(title + ': ' + name(e) + ' has no size');
      } else if (b.left < box.left - 0.5 || b.right > box.right + 0.5
          || b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5) {
        r.outside.push(title + ': ' + name(e));
      }
    }
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        const [a, b] = [items[i][1], items[j][1]];
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) {
          r.overlapping.push(title + ': ' + name(items[i][0]) + ' and ' + name(items[j][0]));
        }
      }
    }
  }
  const out = document.createElement('script');
  out.type = 'application/json';
  out.id = 'layout';
  out.textContent = JSON.stringify(r).replace(/</g, '\\u003c');
  document.body.appendChild(out);
});
</script>"##;

/// What [`MEASURE`] found.
#[derive(Debug, Deserialize)]
struct Layout {
    width: f64,
    doc_scroll_width: f64,
    doc_client_width: f64,
    /// Blocks wider inside than outside that are not scroll boxes.
    overflowing: Vec<String>,
    /// Scroll boxes (the tables' `.table`, the log's `pre`) that scroll.
    scrolling: Vec<String>,
    /// Pairs of marks or labels of one chart whose boxes overlap.
    overlapping: Vec<String>,
    /// Marks or labels outside their chart, or of no size.
    outside: Vec<String>,
    svgs: usize,
    marks: usize,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
}

/// The fixture's report.json with its telemetry and training log, rendered as the runner does.
fn page(name: &str) -> String {
    let dir = fixture(name);
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let report: Report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not a report: {e}", dir.display()));
    let series = RunSeries::load(
        &dir.join("telemetry.jsonl"),
        &dir.join("train.log"),
        report.train.as_ref().map(|t| t.container_id.as_str()),
    );
    html::render(&report, &series)
}

/// The page of `name` with the measuring script, laid out `width` px wide.
fn measure(name: &str, width: u32) -> Layout {
    let html = page(name);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    let at = html.rfind("</body>").expect("the page has a body");
    std::fs::write(&path, format!("{}{MEASURE}{}", &html[..at], &html[at..])).unwrap();
    let out = chromium::run(
        &path,
        &["--dump-dom", &format!("--window-size={width},2000")],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = r#"<script type="application/json" id="layout">"#;
    let json = dom
        .split(start)
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap_or_else(|| panic!("the measuring script wrote nothing:\n{dom}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// A screenshot of the page of `name`, `width` × `height` px, at `path`.
fn screenshot(name: &str, width: u32, height: u32, path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let page_path = dir.path().join("report.html");
    std::fs::write(&page_path, page(name)).unwrap();
    chromium::run(
        &page_path,
        &[
            &format!("--window-size={width},{height}"),
            &format!("--screenshot={}", path.display()),
        ],
    );
}

/// The width, height and number of distinct colours of a PNG.
fn png_facts(path: &Path) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    let colours: std::collections::HashSet<&[u8]> =
        buf[..info.buffer_size()].chunks(step).collect();
    (info.width, info.height, colours.len())
}

#[test]
fn the_page_fits_any_width_and_no_mark_hides_another() {
    let mut failures = Vec::new();
    for name in ["gpu", "cpu"] {
        for width in WIDTHS {
            let l = measure(name, width);
            assert_eq!(l.width, f64::from(width), "{l:?}");
            assert!(l.svgs >= 2 && l.marks > 20, "{name} at {width} px: {l:?}");
            let mut problems = Vec::new();
            if l.doc_scroll_width > l.doc_client_width {
                problems.push(format!(
                    "the page is {} px wide in a {} px window",
                    l.doc_scroll_width, l.doc_client_width
                ));
            }
            problems.extend(l.overflowing.iter().map(|o| format!("overflows: {o}")));
            problems.extend(l.overlapping.iter().map(|o| format!("overlap: {o}")));
            problems.extend(l.outside.iter().map(|o| format!("outside its chart: {o}")));
            // At a desktop width every table wraps to fit; narrower, a table may scroll in its box.
            if width >= 1280 {
                problems.extend(
                    l.scrolling
                        .iter()
                        .map(|o| format!("scrolls at 1280 px: {o}")),
                );
            }
            failures.extend(
                problems
                    .iter()
                    .map(|p| format!("{name} at {width} px: {p}")),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "report.html does not fit:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_chart_without_data_is_one_line_saying_why() {
    let cpu = page("cpu");
    for line in [
        r#"<p class="nodata">GPU utilization: no samples, the run had no GPU</p>"#,
        r#"<p class="nodata">GPU memory: no samples, the run had no GPU</p>"#,
        r#"<p class="nodata">Training loss: no values, the training log printed no loss value</p>"#,
    ] {
        assert!(cpu.contains(line), "{line} in:\n{cpu}");
    }
    // The claims and the container's memory.
    assert_eq!(cpu.matches("<svg").count(), 2, "{cpu}");
    let gpu = page("gpu");
    assert_eq!(gpu.matches("<svg").count(), 5, "{gpu}");
    assert!(!gpu.contains(r#"<p class="nodata""#), "{gpu}");
    for p in [&cpu, &gpu] {
        for external in ["<script", "src=", "href=", "url(", "@import"] {
            assert!(
                !p.contains(external),
                "the page must be self-contained: {external}"
            );
        }
    }
    // One reproduced mark per task with a finite score (FINEWEB's inf is written out), one
    // diamond per claim.
    assert_eq!(gpu.matches(r#"class="reproduced""#).count(), 5, "{gpu}");
    assert_eq!(gpu.matches(r#"class="reproduced tick""#).count(), 1);
    assert_eq!(gpu.matches(r#"class="claimed""#).count(), 5);
}

#[test]
fn a_screenshot_shows_the_page_and_docs_keep_one() {
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("REPROBOX_SCREENSHOT_DIR").map(PathBuf::from);
    for (name, width) in [("gpu", 800), ("cpu", 800), ("gpu", 1280), ("cpu", 1280)] {
        let shot = keep
            .as_deref()
            .unwrap_or(dir.path())
            .join(format!("{name}-{width}.png"));
        screenshot(name, width, 3000, &shot);
        if let Some(keep) = &keep {
            std::fs::write(keep.join(format!("{name}.html")), page(name)).unwrap();
        }
        let (w, h, colours) = png_facts(&shot);
        assert_eq!((w, h), (width, 3000), "{}", shot.display());
        assert!(
            colours > 50,
            "{name} at {width} px is a picture, not a blank: {colours} colours"
        );
    }

    // The one kept in docs/: the top of the `gpu/` page (banner, run, claims, resources).
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-html.png");
    if std::env::var_os("REPROBOX_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        screenshot("gpu", 1280, 1700, &docs);
    }
    let (w, h, colours) = png_facts(&docs);
    assert!(
        w == 1280 && h <= 2000 && colours > 50,
        "{} is {w}×{h} with {colours} colours; regenerate it with \
         `REPROBOX_UPDATE_SCREENSHOT=1 cargo nextest run --test report_html`",
        docs.display()
    );
}
