//! The version-only first pass (house style §7.7): which manifest schemas this reprobox reads, and
//! which reprobox a newer schema requires.

/// The newest manifest schema this reprobox reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Every manifest schema version and the first reprobox release that reads it. A new schema
/// version is added here by the release that introduces it.
pub const SCHEMA_HISTORY: &[(u32, &str)] = &[(1, "0.1.0")];

/// The reprobox version a manifest with this `schema_version` requires ("requires reprobox ≥ X").
///
/// A schema newer than this build knows is not in [`SCHEMA_HISTORY`]. A new schema version is a
/// breaking change of the manifest format, and the project ships breaking changes only in a
/// semver-breaking release (0.x → 0.(x+1), or x.y → (x+1).0 from 1.0 on), so the lower bound
/// for it is the next breaking release after this one.
pub fn required_reprobox(schema_version: u32) -> String {
    if let Some((_, v)) = SCHEMA_HISTORY.iter().find(|(s, _)| *s == schema_version) {
        return (*v).to_owned();
    }
    next_breaking(crate::VERSION)
        .unwrap_or_else(|| format!("a release newer than {}", crate::VERSION))
}

/// The next semver-breaking release after `version` (`0.1.0` → `0.2.0`, `1.4.2` → `2.0.0`).
fn next_breaking(version: &str) -> Option<String> {
    // A pre-release or build suffix (`0.2.0-dev`) does not change the answer.
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    Some(if major == 0 {
        format!("0.{}.0", minor.checked_add(1)?)
    } else {
        format!("{}.0.0", major.checked_add(1)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_covers_the_current_schema() {
        assert_eq!(SCHEMA_HISTORY.last().map(|(s, _)| *s), Some(SCHEMA_VERSION));
        assert_eq!(required_reprobox(1), "0.1.0");
    }

    #[test]
    fn unknown_newer_schemas_require_the_next_breaking_release() {
        assert_eq!(next_breaking("0.1.0").as_deref(), Some("0.2.0"));
        assert_eq!(next_breaking("0.9.3-dev").as_deref(), Some("0.10.0"));
        assert_eq!(next_breaking("1.4.2").as_deref(), Some("2.0.0"));
        assert_eq!(next_breaking("x"), None);
        assert_eq!(required_reprobox(2), next_breaking(crate::VERSION).unwrap());
    }
}
