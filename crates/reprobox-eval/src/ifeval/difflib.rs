//! `difflib.SequenceMatcher(isjunk, a, b).ratio()` from CPython's standard library, which
//! subnet 37's IF_EVAL uses to call two responses duplicates (ratio > 0.6 with blanks and tabs as
//! junk, docs/references.md S§2.4). Ported with its "autojunk" rule: when `b` has
//! 200 elements or more, elements that make up more than 1 % of it (plus one) are ignored when
//! seeding matches. Sequences are of Unicode scalar values, as Python's `str` is.

use std::collections::{HashMap, HashSet};

struct Matcher<'a> {
    a: &'a [char],
    b: &'a [char],
    b2j: HashMap<char, Vec<usize>>,
    junk: HashSet<char>,
}

impl<'a> Matcher<'a> {
    fn new(a: &'a [char], b: &'a [char], isjunk: impl Fn(char) -> bool) -> Self {
        let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
        for (j, &c) in b.iter().enumerate() {
            b2j.entry(c).or_default().push(j);
        }
        let junk: HashSet<char> = b2j.keys().copied().filter(|&c| isjunk(c)).collect();
        for c in &junk {
            b2j.remove(c);
        }
        if b.len() >= 200 {
            let ntest = b.len() / 100 + 1;
            b2j.retain(|_, idx| idx.len() <= ntest);
        }
        Matcher { a, b, b2j, junk }
    }

    /// `find_longest_match(alo, ahi, blo, bhi)`: (i, j, size).
    fn longest(&self, alo: usize, ahi: usize, blo: usize, bhi: usize) -> (usize, usize, usize) {
        let (a, b) = (self.a, self.b);
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0usize);
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for (i, c) in a.iter().enumerate().take(ahi).skip(alo) {
            let mut next: HashMap<usize, usize> = HashMap::new();
            if let Some(js) = self.b2j.get(c) {
                for &j in js {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j
                        .checked_sub(1)
                        .and_then(|p| j2len.get(&p))
                        .copied()
                        .unwrap_or(0)
                        + 1;
                    next.insert(j, k);
                    if k > bestsize {
                        (besti, bestj, bestsize) = (i + 1 - k, j + 1 - k, k);
                    }
                }
            }
            j2len = next;
        }
        let junk = |c: char| self.junk.contains(&c);
        // Extend by non-junk elements on each side, then suck up matching junk.
        for want_junk in [false, true] {
            while besti > alo
                && bestj > blo
                && junk(b[bestj - 1]) == want_junk
                && a[besti - 1] == b[bestj - 1]
            {
                (besti, bestj, bestsize) = (besti - 1, bestj - 1, bestsize + 1);
            }
            while besti + bestsize < ahi
                && bestj + bestsize < bhi
                && junk(b[bestj + bestsize]) == want_junk
                && a[besti + bestsize] == b[bestj + bestsize]
            {
                bestsize += 1;
            }
        }
        (besti, bestj, bestsize)
    }

    /// The total size of `get_matching_blocks()`.
    fn matched(&self) -> usize {
        let mut total = 0;
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let (i, j, k) = self.longest(alo, ahi, blo, bhi);
            if k > 0 {
                total += k;
                if alo < i && blo < j {
                    queue.push((alo, i, blo, j));
                }
                if i + k < ahi && j + k < bhi {
                    queue.push((i + k, ahi, j + k, bhi));
                }
            }
        }
        total
    }
}

/// `SequenceMatcher(isjunk, a, b).ratio()`: 2·M / (len(a) + len(b)), 1.0 for two empty strings.
pub fn ratio(a: &str, b: &str, isjunk: impl Fn(char) -> bool) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let len = a.len() + b.len();
    if len == 0 {
        return 1.0;
    }
    let m = Matcher::new(&a, &b, isjunk);
    2.0 * m.matched() as f64 / len as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blanks(c: char) -> bool {
        c == ' ' || c == '\t'
    }

    #[test]
    fn the_python_documentation_examples() {
        // difflib docs: SequenceMatcher(lambda x: x == " ", "private Thread currentThread;",
        // "private volatile Thread currentThread;").ratio() == 0.866 (rounded).
        let r = ratio(
            "private Thread currentThread;",
            "private volatile Thread currentThread;",
            |c| c == ' ',
        );
        assert_eq!((r * 1000.0).round() / 1000.0, 0.866);
        // SequenceMatcher(None, "abcd", "bcde").ratio() == 0.75
        assert_eq!(ratio("abcd", "bcde", |_| false), 0.75);
        assert_eq!(ratio("", "", blanks), 1.0);
        assert_eq!(ratio("abc", "", blanks), 0.0);
    }
}
