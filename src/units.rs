//! Human-friendly units in policy files and sandbox profiles: durations such as `"24h"`, `"90m"`,
//! `"720s"`, `"500ms"` and sizes such as `"128GiB"`, `"15GiB"`. These files are written by people
//! and read by people, so a limit reads as it does in the competition's rules; these small parsers
//! turn it into a `Duration` or bytes.
//! They accept exactly the forms listed in their error messages and nothing looser.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// The accepted duration forms, shown in every duration error.
pub const DURATION_FORMS: &str = "a string like \"24h\", \"90m\", \"30s\", \"1h30m\", \"2d\" or \"500ms\" (units d, h, m, s, ms)";

/// The accepted size forms, shown in every size error.
pub const SIZE_FORMS: &str = "a string like \"128GiB\", \"500GiB\", \"512MiB\" or \"4096B\" \
     (binary units B, KiB, MiB, GiB, TiB; decimal units KB, MB, GB, TB; a decimal fraction such as \"15.1GiB\" is allowed)";

/// The longest duration a policy or profile may write: 30 days. No competition's wall clock is
/// longer, and a bound keeps every deadline (`now + limit`) far inside what the clock can hold.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// Parses a duration such as `"24h"`, `"90m"`, `"1h30m"`, `"720s"` or `"2d"`.
///
/// Each component is a non-negative integer followed by one unit (`d`, `h`, `m`, `s`, `ms`); units must
/// appear at most once and in decreasing order, so `"30m1h"` is rejected rather than guessed at.
/// Nothing else is accepted: no spaces around it, and nothing longer than [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text;
    if s.is_empty() {
        return Err(format!("empty duration; expected {DURATION_FORMS}"));
    }
    if s.trim() != s {
        return Err(format!(
            "invalid duration `{text}`: spaces before or after it are not allowed (hint: write `{}`); expected {DURATION_FORMS}",
            s.trim()
        ));
    }
    // In milliseconds.
    let mut total: u64 = 0;
    let mut rest = s;
    // The rank of the last unit seen: d=5, h=4, m=3, s=2, ms=1. Units must strictly decrease.
    let mut last_rank = u8::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration `{text}`: expected a number; expected {DURATION_FORMS}"
            ));
        }
        let (num, tail) = rest.split_at(digits);
        let value: u64 = num
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: `{num}` is too large"))?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let (rank, millis) = match unit {
            "d" => (5, 86_400_000),
            "h" => (4, 3_600_000),
            "m" => (3, 60_000),
            "s" => (2, 1_000),
            "ms" => (1, 1),
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: `{num}` has no unit; expected {DURATION_FORMS}"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}`; expected {DURATION_FORMS}"
                ));
            }
        };
        if rank >= last_rank {
            return Err(format!(
                "invalid duration `{text}`: units must appear once each, largest first"
            ));
        }
        last_rank = rank;
        total = value
            .checked_mul(millis)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration `{text}`: too large"))?;
        rest = tail;
    }
    let d = Duration::from_millis(total);
    if d > MAX_DURATION {
        return Err(format!(
            "invalid duration `{text}`: longer than 30d, the longest limit reprobox accepts"
        ));
    }
    Ok(d)
}

/// Formats a duration the way policy files write it, in hours, minutes and seconds as rules state
/// them (`86400 s` → `"24h"`, `5400 s` → `"1h30m"`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Parses a size such as `"128GiB"`, `"500GiB"`, `"15.1GiB"`, `"20GB"` or `"4096B"` into bytes.
///
/// Binary units (`KiB`, `MiB`, `GiB`, `TiB`) are powers of 1024 and decimal units (`KB`, `MB`,
/// `GB`, `TB`) powers of 1000, as the rules' own texts distinguish them. A fraction is rounded
/// down to a whole byte.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let num_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (num, unit) = s.split_at(num_len);
    let unit = unit.trim_start();
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(format!(
            "invalid size `{text}`: expected a number; expected {SIZE_FORMS}"
        ));
    }
    let multiplier: u64 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "" => {
            return Err(format!(
                "invalid size `{text}`: no unit; expected {SIZE_FORMS}"
            ));
        }
        other => {
            return Err(format!(
                "invalid size `{text}`: unknown unit `{other}`; expected {SIZE_FORMS}"
            ));
        }
    };
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let int: u64 = int_part
        .parse()
        .map_err(|_| format!("invalid size `{text}`: `{int_part}` is too large"))?;
    let mut bytes = int
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size `{text}`: too large"))?;
    if !frac_part.is_empty() {
        if unit == "B" {
            return Err(format!("invalid size `{text}`: a byte count must be whole"));
        }
        // Exact integer arithmetic: fraction digits × multiplier / 10^digits, at most 9 digits.
        if frac_part.len() > 9 {
            return Err(format!("invalid size `{text}`: at most 9 fraction digits"));
        }
        let frac: u128 = frac_part
            .parse()
            .map_err(|_| format!("invalid size `{text}`"))?;
        let scale = 10u128.pow(frac_part.len() as u32);
        let extra = frac * u128::from(multiplier) / scale;
        bytes = u64::try_from(extra)
            .ok()
            .and_then(|e| bytes.checked_add(e))
            .ok_or_else(|| format!("invalid size `{text}`: too large"))?;
    }
    Ok(bytes)
}

/// A byte count for people: binary units with one decimal from KiB up (`512 B`, `1.5 MiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Formats a byte count with the largest binary unit that divides it exactly (`"128GiB"`), or in
/// bytes with a two-decimal GiB approximation when none does.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    if bytes >= 1 << 30 {
        format!("{bytes}B (~{:.2}GiB)", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{bytes}B")
    }
}

/// A duration as written in a policy file (`"24h"`). Deserializes from a string only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// A size as written in a policy file (`"128GiB"`), in bytes. Deserializes from a string only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanSize(pub u64);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(DURATION_FORMS)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for HumanSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(SIZE_FORMS)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_size(v).map(HumanSize).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "HumanDuration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$",
            "description": DURATION_FORMS,
        })
    }
}

impl JsonSchema for HumanSize {
    fn schema_name() -> Cow<'static, str> {
        "HumanSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]{1,9})? ?(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$",
            "description": SIZE_FORMS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let cases = [
            ("24h", 86_400),
            ("2h", 7_200),
            ("90m", 5_400),
            ("30s", 30),
            ("720s", 720),
            ("1h30m", 5_400),
            ("2d", 172_800),
            ("1d2h3m4s", 93_784),
            ("0s", 0),
            ("30d", 2_592_000),
            ("720h", 2_592_000),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_in_milliseconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s500ms"), Ok(Duration::from_millis(2_500)));
        assert!(parse_duration("500ms2s").is_err(), "largest unit first");
    }

    #[test]
    fn durations_reject() {
        for text in [
            "",
            "24",
            "h",
            "24 h",
            "1.5h",
            "24hours",
            "30m1h",
            "1h1h",
            "-1h",
            "99999999999999999999s",
            "1w",
            // Issue 17 item 5: no spaces around it, and a bound.
            "  24h",
            "24h ",
            " 1h ",
            "\t2h",
            "31d",
            "30d1ms",
            "2592001s",
            "18446744073709551s",
        ] {
            assert!(parse_duration(text).is_err(), "{text} should be rejected");
        }
        let err = parse_duration("  24h").unwrap_err();
        assert!(
            err.contains("spaces") && err.contains("write `24h`"),
            "{err}"
        );
        let err = parse_duration("31d").unwrap_err();
        assert!(err.contains("longer than 30d"), "{err}");
        let err = parse_duration("24x").unwrap_err();
        assert!(
            err.contains("unknown unit `x`") && err.contains("\"24h\""),
            "{err}"
        );
    }

    #[test]
    fn durations_round_trip() {
        for text in ["24h", "1h30m", "12m", "1h1s", "26h3m4s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(parse_duration("2d").unwrap()), "48h");
        assert_eq!(format_duration(parse_duration("720s").unwrap()), "12m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn sizes_parse() {
        let cases = [
            ("128GiB", 128u64 << 30),
            ("500GiB", 500 << 30),
            ("15GiB", 15 << 30),
            ("512MiB", 512 << 20),
            ("1TiB", 1 << 40),
            ("4096B", 4096),
            ("20GB", 20_000_000_000),
            ("1KB", 1_000),
            ("0.5GiB", 1 << 29),
            ("15.1GiB", (15 << 30) + (1u64 << 30) / 10),
            ("8 GiB", 8 << 30),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn sizes_reject() {
        for text in [
            "",
            "128",
            "GiB",
            "128gib",
            "1.5B",
            ".5GiB",
            "5.GiB",
            "1.2.3GiB",
            "128 G",
            "99999999999TiB",
            "-1GiB",
        ] {
            assert!(parse_size(text).is_err(), "{text} should be rejected");
        }
    }

    #[test]
    fn sizes_format() {
        assert_eq!(format_size(128 << 30), "128GiB");
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size(1000), "1000B");
        assert!(format_size((15 << 30) + 1).starts_with("16106127361B (~15.00GiB)"));
    }

    #[test]
    fn serde_forms() {
        #[derive(Deserialize)]
        struct T {
            d: HumanDuration,
            s: HumanSize,
        }
        let t: T = toml::from_str("d = \"2h\"\ns = \"1GiB\"").unwrap();
        assert_eq!(t.d.0, Duration::from_secs(7200));
        assert_eq!(t.s.0, 1 << 30);
        let err = toml::from_str::<T>("d = 7200\ns = \"1GiB\"").err().unwrap();
        assert!(err.message().contains("\"24h\""), "{}", err.message());
    }
}
