//! A tiny glob matcher for model and dataset ids (`meta-llama/Llama-2-*`, `*ShareGPT*`) and GPU
//! names. Only `*` (any run of characters, `/` included) and `?` (one character) are special, and
//! matching ignores ASCII case because the Hugging Face Hub resolves ids case-insensitively.

/// Whether `text` matches `pattern` (`*` and `?` wildcards, ASCII case ignored).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Iterative matching with one backtrack point: linear in practice, no recursion on input.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn matches() {
        let cases = [
            ("meta-llama/Llama-2-*", "meta-llama/Llama-2-7b-hf", true),
            ("meta-llama/Llama-2-*", "meta-llama/llama-2-13B-hf", true),
            ("meta-llama/Llama-2-*", "meta-llama/Llama-3-8B", false),
            (
                "*ShareGPT*",
                "anon8231489123/ShareGPT_Vicuna_unfiltered",
                true,
            ),
            ("*sharegpt*", "RyokoAI/ShareGPT52K", true),
            ("*-chat*", "meta-llama/Llama-2-7b-chat-hf", true),
            ("*-chat*", "meta-llama/Llama-2-7b-hf", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("NVIDIA A100-*40GB", "NVIDIA A100-SXM4-40GB", true),
            ("*a*b", "xaxxbxb", true),
            ("*a*b", "xaxxbxc", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p} vs {t}");
        }
    }
}
