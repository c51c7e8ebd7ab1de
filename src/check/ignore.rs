//! `.dockerignore`: which context files the builder leaves out
//! (docs.docker.com/build/concepts/context/#dockerignore-files). One pattern per line, `#`
//! comments, a leading `/` ignored, `*` and `?` within a path component, `**` across any number
//! of components, `!` re-includes; the last matching line wins, and a pattern that matches a
//! directory excludes everything below it. A `<Dockerfile>.dockerignore` next to the Dockerfile
//! takes precedence over the context's `.dockerignore`, as BuildKit does.

/// Parsed `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let parts: Vec<String> = pat
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_owned)
                .collect();
            if !parts.is_empty() {
                rules.push((negate, parts));
            }
        }
        DockerIgnore { rules }
    }

    /// Whether `rel` (relative to the context, `/`-separated) is left out of the build.
    pub fn excludes(&self, rel: &str) -> bool {
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        let mut excluded = false;
        for (negate, pat) in &self.rules {
            // The path itself or any parent directory.
            let hit = (1..=comps.len()).any(|n| match_components(pat, &comps[..n]));
            if hit {
                excluded = !negate;
            }
        }
        excluded
    }
}

fn match_components(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=path.len()).any(|skip| match_components(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((c, tail)) => glob(p.as_bytes(), c.as_bytes()) && match_components(rest, tail),
            None => false,
        },
    }
}

/// `*` and `?` within one component (no `/` to cross).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a COPY source pattern (`*.py`, `src/*.txt`) matches a context path.
pub fn source_matches(pattern: &str, rel: &str) -> bool {
    let pat: Vec<String> = pattern
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect();
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    match_components(&pat, &comps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_exceptions_and_parents() {
        let ig = DockerIgnore::parse(
            "# comment\n/data\n**/*.ckpt\nreq*.txt\n!requirements.txt\nexperiments/**/out\n",
        );
        assert!(ig.excludes("data/train.jsonl"));
        assert!(ig.excludes("a/b/model.ckpt"));
        assert!(ig.excludes("model.ckpt"));
        assert!(ig.excludes("reqs-dev.txt"));
        assert!(!ig.excludes("requirements.txt"));
        assert!(
            !ig.excludes("src/reqs-dev.txt"),
            "patterns are anchored at the root"
        );
        assert!(ig.excludes("experiments/x/y/out/log"));
        assert!(!ig.excludes("train.py"));
        assert!(source_matches("*.py", "train.py"));
        assert!(!source_matches("*.py", "src/train.py"));
        assert!(source_matches("src/*.py", "src/train.py"));
    }
}
