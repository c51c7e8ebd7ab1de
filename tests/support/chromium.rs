#![allow(dead_code)]
//! Headless Chromium for the tests that look at report.html (Debian's package, which
//! `scripts/setup` installs): included with `#[path = "support/chromium.rs"] mod chromium;`.

use std::path::Path;
use std::process::{Command, Output};

/// The Chromium binary; without one the test fails, naming `scripts/setup`.
pub fn binary() -> &'static str {
    for c in ["chromium", "chromium-browser"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("no chromium on PATH: scripts/setup installs Debian's chromium package for this test");
}

/// Runs headless Chromium on `page` with the arguments given, in a profile of its own; scripts
/// get two seconds of virtual time before `--dump-dom` or `--screenshot` happens.
pub fn run(page: &Path, args: &[&str]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Pixels of a decoded RGB(A) screenshot within `tol` of `rgb` in every channel.
pub fn pixels_near(png_path: &Path, rgb: [u8; 3], tol: u8) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tol))
        .count()
}
