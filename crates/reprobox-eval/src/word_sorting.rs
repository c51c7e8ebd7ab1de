//! Subnet 37 WORD_SORTING (`finetune/datasets/generated/word_sorting_loader.py`,
//! docs/references.md S§3.2): sorting challenges drawn from a word list with CPython's global
//! `random` (MT19937) seeded with the evaluation seed, scored with REFERENCE_LOSS.
//!
//! After `random.seed(seed)`, each of the samples draws `k = random.randint(2, 20)` and
//! `ws = random.sample(words, k)`; the challenge is `"Sort the following words alphabetically: "
//! + " ".join(ws) + ". "` and the reference `" ".join(sorted(ws))`. The words are NLTK's
//! `words.words(fileids=["en-basic"])` (Ogden's 850), lowercased, of at least 3 characters, in
//! file order. [`PyRandom`] reproduces CPython's generator bit for bit.

use std::path::Path;

use super::EvalError;

/// The loader's defaults.
pub const SAMPLES: usize = 400;
pub const MIN_WORD_COUNT: u64 = 2;
pub const MAX_WORD_COUNT: u64 = 20;
pub const MIN_WORD_LENGTH: usize = 3;
/// The challenge's fixed text (note the trailing `". "` after the words).
pub const PREFIX: &str = "Sort the following words alphabetically: ";

/// One generated sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordSortingExample {
    pub id: String,
    /// The user turn.
    pub challenge: String,
    /// The sorted words, scored with REFERENCE_LOSS.
    pub reference: String,
}

/// CPython's `random.Random`: MT19937 with `init_by_array` seeding from an integer, and the
/// `getrandbits`-based `_randbelow` that `randint`, `choice`, `shuffle` and `sample` use.
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; 624],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom").finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.seed(n)` for the non-negative integer whose 32-bit words, least significant first,
    /// are `words` (CPython uses `abs(n)`; 0 is `[0]`).
    pub fn from_words(words: &[u32]) -> Self {
        let mut key: Vec<u32> = words.to_vec();
        while key.len() > 1 && key.last() == Some(&0) {
            key.pop();
        }
        if key.is_empty() {
            key.push(0);
        }
        let mut r = Self::init_genrand(19_650_218);
        let mt = &mut r.state;
        let n = 624usize;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..n.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= n {
                mt[0] = mt[n - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..n - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= n {
                mt[0] = mt[n - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        r
    }

    /// `random.seed(n)` for a decimal integer of any size (a leading `-` is ignored, as CPython
    /// seeds with `abs(n)`).
    pub fn from_decimal(seed: &str) -> Result<Self, String> {
        Ok(Self::from_words(&decimal_to_words(seed)?))
    }

    fn init_genrand(s: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = s;
        for i in 1..624 {
            state[i] = 1_812_433_253u32
                .wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: 624 }
    }

    /// MT19937's `genrand_uint32`.
    pub fn next_u32(&mut self) -> u32 {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        if self.index >= 624 {
            let mt = &mut self.state;
            for k in 0..624 {
                let y = (mt[k] & UPPER) | (mt[(k + 1) % 624] & LOWER);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for `k` in 1..=64 (32-bit words, least significant first; the last
    /// word keeps its top bits).
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!((1..=64).contains(&k), "getrandbits: k = {k}");
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        (high << 32) | low
    }

    /// `_randbelow(n)`: rejection sampling with `getrandbits(n.bit_length())`.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `randint(a, b)`, both ends included.
    pub fn randint(&mut self, a: u64, b: u64) -> u64 {
        a + self.randbelow(b - a + 1)
    }

    /// `random.shuffle(x)`: Fisher–Yates from the end, `j = _randbelow(i + 1)`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }

    /// `random.seed(int(hashlib.sha256(block_hash.encode()).hexdigest(), 16))`: the subnet's
    /// evaluation seed from a block hash string such as `0x5d0c…` (docs/references.md S§4; the
    /// hashed text includes the `0x`).
    pub fn from_block_hash(block_hash: &str) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(block_hash.as_bytes());
        // The digest is the integer big-endian; init_by_array takes 32-bit words, least
        // significant first.
        let words: Vec<u32> = digest
            .chunks_exact(4)
            .rev()
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Self::from_words(&words)
    }

    /// `random.sample(population, k)` (CPython 3.11+, without `counts`): the pool branch when
    /// the population is small against the set size, else the set branch.
    pub fn sample<T: Clone>(&mut self, population: &[T], k: usize) -> Vec<T> {
        let n = population.len();
        assert!(k <= n, "sample larger than population");
        let mut setsize = 21usize;
        if k > 5 {
            // 4 ** ceil(log(k * 3, 4)), with math.log's float arithmetic.
            let e = ((k * 3) as f64).ln() / 4f64.ln();
            setsize += 4usize.pow(e.ceil() as u32);
        }
        let mut result = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<T> = population.to_vec();
            for i in 0..k {
                let j = self.randbelow((n - i) as u64) as usize;
                result.push(pool[j].clone());
                pool[j] = pool[n - i - 1].clone();
            }
        } else {
            let mut selected = std::collections::HashSet::new();
            for _ in 0..k {
                let mut j = self.randbelow(n as u64) as usize;
                while selected.contains(&j) {
                    j = self.randbelow(n as u64) as usize;
                }
                selected.insert(j);
                result.push(population[j].clone());
            }
        }
        result
    }
}

/// The 32-bit words of a decimal integer, least significant first.
fn decimal_to_words(seed: &str) -> Result<Vec<u32>, String> {
    let digits = seed.trim().trim_start_matches(['-', '+']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("seed `{seed}` is not a decimal integer"));
    }
    let mut words: Vec<u32> = vec![0];
    for b in digits.bytes() {
        let mut carry = u64::from(b - b'0');
        for w in &mut words {
            let v = u64::from(*w) * 10 + carry;
            *w = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            words.push(carry as u32);
        }
    }
    Ok(words)
}

/// The loader's word list from the text of NLTK's `corpora/words/en-basic`: one word per line,
/// blank lines skipped (`WordListCorpusReader.words`), lowercased, at least
/// [`MIN_WORD_LENGTH`] characters, in file order.
pub fn parse_words(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim_end().is_empty())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= MIN_WORD_LENGTH)
        .collect()
}

/// Reads a word-list file (see [`parse_words`]).
pub fn read_words(path: &Path) -> Result<Vec<String>, EvalError> {
    let text = reprobox::input_file::read_to_string(path, crate::DATA_CAP)?;
    let words = parse_words(&text);
    if words.len() < MAX_WORD_COUNT as usize {
        return Err(EvalError::BadLine {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "{} words of at least {MIN_WORD_LENGTH} characters; the generator draws up to \
                 {MAX_WORD_COUNT} (hint: pass NLTK's corpora/words/en-basic)",
                words.len()
            ),
        });
    }
    Ok(words)
}

/// The `samples` challenges the subnet draws for `seed` (a decimal integer, e.g. the
/// `int(sha256(block_hash).hexdigest(), 16)` of docs/references.md S§4) from `words`. Ids are
/// the 0-based sample index. The same seed and words always give the same examples.
pub fn generate(
    words: &[String],
    seed: &str,
    samples: usize,
) -> Result<Vec<WordSortingExample>, String> {
    let mut rng = PyRandom::from_decimal(seed)?;
    generate_with(words, &mut rng, samples)
}

/// [`generate`] with an already seeded generator (e.g. [`PyRandom::from_block_hash`]).
pub fn generate_with(
    words: &[String],
    rng: &mut PyRandom,
    samples: usize,
) -> Result<Vec<WordSortingExample>, String> {
    if words.len() < MAX_WORD_COUNT as usize {
        return Err(format!(
            "the word list has {} words; the generator draws up to {MAX_WORD_COUNT}",
            words.len()
        ));
    }
    Ok((0..samples)
        .map(|i| {
            let k = rng.randint(MIN_WORD_COUNT, MAX_WORD_COUNT) as usize;
            let ws = rng.sample(words, k);
            let mut sorted = ws.clone();
            // Python's sorted() on str: by code point, which is byte order in UTF-8.
            sorted.sort();
            WordSortingExample {
                id: i.to_string(),
                challenge: format!("{PREFIX}{}. ", ws.join(" ")),
                reference: sorted.join(" "),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Vec<String> {
        parse_words(
            "I\na\nable\nabout\naccount\nacid\n\nacross\nAct\naddition\nadjustment\nadvertisement\n\
             after\nagain\nagainst\nagreement\nair\nall\nalmost\namong\namount\namusement\nand\n\
             angle\nangry\nanimal\nanswer\nant\nany\napparatus\napple\napproval\narch\nargument\n",
        )
    }

    #[test]
    fn mt19937_matches_cpython() {
        // python3 -c "import random; random.seed(42); print([random.getrandbits(32) for _ in range(3)])"
        let mut r = PyRandom::from_decimal("42").unwrap();
        let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, [2_746_317_213, 478_163_327, 107_420_369]);
        // random.seed(0); [random.randint(2, 20) for _ in range(5)]
        let mut r = PyRandom::from_decimal("0").unwrap();
        let got: Vec<u64> = (0..5).map(|_| r.randint(2, 20)).collect();
        assert_eq!(got, [14, 15, 3, 10, 18]);
    }

    #[test]
    fn block_hash_seeds_and_shuffle_match_cpython() {
        // random.seed(int(hashlib.sha256("0xabc123".encode()).hexdigest(), 16))
        let mut r = PyRandom::from_block_hash("0xabc123");
        let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, [4_250_842_169, 1_741_592_650, 2_509_035_589]);
        // random.seed(3); x = list(range(10)); random.shuffle(x)
        let mut r = PyRandom::from_decimal("3").unwrap();
        let mut x: Vec<u32> = (0..10).collect();
        r.shuffle(&mut x);
        assert_eq!(x, [1, 5, 6, 0, 9, 4, 7, 2, 8, 3]);
    }

    #[test]
    fn big_decimal_seeds_split_into_little_endian_words() {
        assert_eq!(decimal_to_words("0").unwrap(), [0]);
        assert_eq!(decimal_to_words("4294967296").unwrap(), [0, 1]);
        assert_eq!(decimal_to_words("18446744073709551617").unwrap(), [1, 0, 1]);
        assert!(decimal_to_words("0x12").is_err());
    }

    #[test]
    fn word_list_is_lowercased_filtered_and_ordered() {
        let w = words();
        assert_eq!(&w[..4], ["able", "about", "account", "acid"]);
        assert!(w.contains(&"act".to_string()));
        assert!(!w.iter().any(|w| w.len() < 3));
    }

    #[test]
    fn same_seed_same_examples_and_the_format_is_the_subnets() {
        let w = words();
        let a = generate(&w, "123456789012345678901234567890", 50).unwrap();
        let b = generate(&w, "123456789012345678901234567890", 50).unwrap();
        assert_eq!(a, b);
        let c = generate(&w, "123456789012345678901234567891", 50).unwrap();
        assert_ne!(a, c);
        for (i, ex) in a.iter().enumerate() {
            assert_eq!(ex.id, i.to_string());
            let body = ex
                .challenge
                .strip_prefix(PREFIX)
                .and_then(|s| s.strip_suffix(". "))
                .unwrap();
            let drawn: Vec<&str> = body.split(' ').collect();
            assert!((2..=20).contains(&drawn.len()), "{}", ex.challenge);
            let mut sorted = drawn.clone();
            sorted.sort_unstable();
            assert_eq!(ex.reference, sorted.join(" "));
            // Drawn without replacement.
            let unique: std::collections::HashSet<_> = drawn.iter().collect();
            assert_eq!(unique.len(), drawn.len());
        }
    }
}
