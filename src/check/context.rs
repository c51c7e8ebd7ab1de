//! One walk of the submission directory: symlinks that leave it, junk files, undeclared data and
//! weights, oversized files and an oversized build context.
//!
//! Finalists' repositories held `__MACOSX/`, `.DS_Store`, `__pycache__/*.pyc` and even an
//! `accounts.sqlite` (docs/references.md C§1.5 item 3); the open-data rule
//! (C§1.1) means every dataset training reads must be declared, so large data-like files that the
//! manifest does not declare are reported, `.json` files holding records among them. The walk never
//! follows symlinks and skips `.git/`; it stats files and reads only the first 64 KiB of large
//! `.json` files; the secret scan reads files afterwards from the list this walk returns.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::finding::{Finding, FindingKind};

/// What the walk needs to know; built from the manifest and the policy by the orchestrator.
#[derive(Debug, Clone)]
pub struct ContextOptions {
    /// The build context, relative to the submission root (`.` is the whole root). Size limits
    /// apply to files under it.
    pub context: String,
    /// Paths (files or directories, relative to the root) the manifest declares, e.g.
    /// `claims.submitted_model`: data-like files under them are not `undeclared_data`.
    pub declared: Vec<String>,
    /// Data-like files at least this large are reported when undeclared.
    pub data_threshold_bytes: u64,
    /// The policy's largest single file in the build context, if it sets one.
    pub max_file_bytes: Option<u64>,
    /// The policy's largest build context, if it sets one.
    pub max_context_bytes: Option<u64>,
}

/// The default threshold for `undeclared_data`: 1 MiB. Code and configuration are far smaller;
/// a real dataset shard or weight file is far larger.
pub const DEFAULT_DATA_THRESHOLD_BYTES: u64 = 1024 * 1024;

/// One regular file the walk saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedFile {
    /// Relative to the submission root, `/`-separated.
    pub rel: String,
    pub size: u64,
}

/// The walk's result.
#[derive(Debug, Clone, Default)]
pub struct ContextScan {
    /// Every regular file outside `.git/` and junk directories, in walk order.
    pub files: Vec<WalkedFile>,
    /// Total bytes of regular files under the build context.
    pub context_bytes: u64,
    pub findings: Vec<Finding>,
}

/// Extensions of data, weights and archives. Multi-part ones (`.json.gz`) are matched on the
/// whole suffix.
const DATA_EXTENSIONS: &[&str] = &[
    ".parquet",
    ".arrow",
    ".jsonl",
    ".jsonl.gz",
    ".jsonl.zst",
    ".json.gz",
    ".ndjson",
    ".csv",
    ".csv.gz",
    ".tsv",
    ".txt",
    ".feather",
    ".avro",
    ".orc",
    ".tfrecord",
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".ggml",
    ".onnx",
    ".npy",
    ".npz",
    ".h5",
    ".hdf5",
    ".pkl",
    ".pickle",
    ".msgpack",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.zst",
    ".zip",
    ".7z",
    ".gz",
    ".xz",
    ".zst",
    ".sqlite",
    ".db",
    ".lmdb",
    ".mdb",
];

/// Names of junk entries; directories among them are reported once and not entered.
const JUNK_NAMES: &[&str] = &[
    "__MACOSX",
    ".DS_Store",
    "__pycache__",
    "Thumbs.db",
    ".ipynb_checkpoints",
];

/// True for a file name that looks like data or weights.
pub fn is_data_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    DATA_EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
}

/// How much of a large `.json` file is read to tell records from a configuration.
const JSON_SNIFF_BYTES: usize = 64 * 1024;

/// True for a `.json` file that holds records: a JSON array of objects (`[{…}, …]`) or JSON lines
/// (an object per line), which is how datasets are shipped under a `.json` name. A single object
/// (a config, a tokenizer, a vocabulary) is not data. Reads at most [`JSON_SNIFF_BYTES`].
fn is_json_records(name: &str, path: &Path) -> bool {
    use std::io::Read;
    if !name.to_ascii_lowercase().ends_with(".json") {
        return false;
    }
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::with_capacity(JSON_SNIFF_BYTES);
    if file
        .take(JSON_SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .is_err()
    {
        return false;
    }
    json_head_is_records(&head)
}

/// The decision of [`is_json_records`] on the first bytes of the file.
fn json_head_is_records(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let mut rest = head.iter().skip_while(|b| b.is_ascii_whitespace());
    match rest.next() {
        // An array whose first element is an object.
        Some(b'[') => rest.find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
        // JSON lines: the first line is a complete object and the next non-empty line opens one.
        Some(b'{') => {
            let mut lines = head
                .split(|&b| b == b'\n')
                .map(|l| l.trim_ascii())
                .filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or_default();
            first.ends_with(b"}") && lines.next().is_some_and(|l| l.starts_with(b"{"))
        }
        _ => false,
    }
}

fn is_junk(name: &str) -> bool {
    JUNK_NAMES.contains(&name) || name.ends_with(".pyc") || name.ends_with(".pyo")
}

/// Normalizes a relative path lexically: `None` if it is absolute or climbs above its start.
pub fn normalize_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn rel_string(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    if s.is_empty() { ".".to_owned() } else { s }
}

fn under(rel: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir == "." || dir.is_empty() || rel == dir || rel.starts_with(&format!("{dir}/"))
}

/// Walks `root` once. Errors only when the root itself cannot be read.
pub fn scan_context(root: &Path, opts: &ContextOptions) -> io::Result<ContextScan> {
    let canonical_root = fs::canonicalize(root)?;
    let context = normalize_relative(Path::new(&opts.context))
        .map(|p| rel_string(&p))
        .unwrap_or_else(|| ".".to_owned());
    let declared: Vec<String> = opts
        .declared
        .iter()
        .filter_map(|d| normalize_relative(Path::new(d)).map(|p| rel_string(&p)))
        .collect();
    let mut scan = ContextScan::default();
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    let mut first = true;
    while let Some(rel_dir) = stack.pop() {
        let entries = match fs::read_dir(root.join(&rel_dir)) {
            Ok(e) => e,
            Err(e) if first => return Err(e),
            Err(_) => continue,
        };
        first = false;
        let mut names: Vec<fs::DirEntry> = entries.filter_map(Result::ok).collect();
        // Sorted, so findings and the file list do not depend on the file system's order.
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name_os = entry.file_name();
            let name = name_os.to_string_lossy();
            let rel_path = rel_dir.join(&name_os);
            let rel = rel_string(&rel_path);
            // `symlink_metadata`: never follow a link while walking.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            let ft = meta.file_type();
            if ft.is_dir() && name == ".git" {
                continue;
            }
            if is_junk(&name) {
                scan.findings.push(
                    Finding::warning(
                        FindingKind::JunkFile,
                        format!("`{name}` is operating-system or interpreter junk"),
                        "delete it and add it to .gitignore and .dockerignore",
                    )
                    .at(rel.clone()),
                );
                // Notebook checkpoints are copies of the notebooks, secrets included: walked
                // (and so scanned) although reported; other junk directories are not entered.
                if ft.is_dir() && name != ".ipynb_checkpoints" {
                    continue;
                }
            }
            if ft.is_symlink() {
                if symlink_escapes(root, &canonical_root, &rel_path) {
                    scan.findings.push(
                        Finding::error(
                            FindingKind::SymlinkEscape,
                            "symlink points outside the submission directory",
                            "replace the symlink with the file it points to, or remove it; everything the build reads must be inside the submission",
                        )
                        .at(rel.clone()),
                    );
                }
                continue;
            }
            if ft.is_dir() {
                stack.push(rel_path);
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let size = meta.len();
            let in_context = under(&rel, &context);
            if in_context {
                scan.context_bytes = scan.context_bytes.saturating_add(size);
                if let Some(max) = opts.max_file_bytes
                    && size > max
                {
                    scan.findings.push(
                        Finding::error(
                            FindingKind::FileTooLarge,
                            format!("file is {size} bytes; the policy allows at most {max} per file in the build context"),
                            "move large inputs out of the submission and declare them under [base_model] or [[datasets]] with a digest",
                        )
                        .at(rel.clone()),
                    );
                }
            }
            if size >= opts.data_threshold_bytes
                && (is_data_like(&name) || is_json_records(&name, &entry.path()))
                && !declared.iter().any(|d| under(&rel, d))
            {
                scan.findings.push(
                    Finding::error(
                        FindingKind::UndeclaredData,
                        format!("{size}-byte data or weights file that the manifest does not declare"),
                        "declare it: datasets under [[datasets]] (open, with license, revision and digest), the submitted model as claims.submitted_model; or remove it",
                    )
                    .at(rel.clone()),
                );
            }
            scan.files.push(WalkedFile { rel, size });
        }
    }
    if let Some(max) = opts.max_context_bytes
        && scan.context_bytes > max
    {
        scan.findings.push(
            Finding::error(
                FindingKind::ContextTooLarge,
                format!("the build context holds {} bytes; the policy allows at most {max}", scan.context_bytes),
                "move data and weights out of the context (declare them as inputs) and add a .dockerignore",
            )
            .at(context.clone()),
        );
    }
    Ok(scan)
}

/// True when the symlink at `root/rel` resolves outside the root. A dangling link is judged by
/// its target text.
fn symlink_escapes(root: &Path, canonical_root: &Path, rel: &Path) -> bool {
    let full = root.join(rel);
    if let Ok(resolved) = fs::canonicalize(&full) {
        return !resolved.starts_with(canonical_root);
    }
    let Ok(target) = fs::read_link(&full) else {
        return false;
    };
    if target.is_absolute() {
        return !target.starts_with(canonical_root) && !target.starts_with(root);
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    normalize_relative(&parent.join(target)).is_none()
}

/// Checks one path the manifest names (`field` is its dotted name for the message): it must be
/// relative, stay inside the root after resolving symlinks, and (when `must_exist`) exist.
pub fn check_manifest_path(
    root: &Path,
    field: &str,
    value: &str,
    must_exist: bool,
) -> Option<Finding> {
    let escape = |why: &str| {
        Finding::error(
            FindingKind::PathEscape,
            format!("`{field} = \"{value}\"` {why}"),
            "use a relative path inside the submission directory, without `..` and without symlinks leaving it",
        )
    };
    let Some(norm) = normalize_relative(Path::new(value)) else {
        return Some(escape("leaves the submission directory"));
    };
    let full = root.join(&norm);
    match (fs::canonicalize(root), fs::canonicalize(&full)) {
        (Ok(r), Ok(p)) if !p.starts_with(&r) => Some(escape(
            "resolves outside the submission directory through a symlink",
        )),
        (Ok(_), Ok(_)) => None,
        (_, Err(_)) if must_exist => Some(Finding::error(
            FindingKind::MissingFile,
            format!("`{field} = \"{value}\"` does not exist in the submission"),
            "fix the path (it is relative to the directory holding reprobox.toml) or add the file",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ContextOptions {
        ContextOptions {
            context: ".".into(),
            declared: vec!["submitted-model".into()],
            data_threshold_bytes: 100,
            max_file_bytes: Some(1000),
            max_context_bytes: Some(1500),
        }
    }

    fn kinds(scan: &ContextScan) -> Vec<(FindingKind, String)> {
        scan.findings
            .iter()
            .map(|f| (f.kind, f.path.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn walk_reports_each_problem_once() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("__MACOSX/x")).unwrap();
        fs::write(r.join("__MACOSX/x/a.parquet"), vec![1u8; 500]).unwrap();
        fs::create_dir_all(r.join(".git/objects")).unwrap();
        fs::write(r.join(".git/objects/big.pack"), vec![1u8; 5000]).unwrap();
        fs::write(r.join(".DS_Store"), b"x").unwrap();
        fs::write(r.join("train.py"), b"print(1)").unwrap();
        fs::write(r.join("small.jsonl"), b"{}\n").unwrap();
        fs::write(r.join("data.jsonl"), vec![b'a'; 200]).unwrap();
        fs::create_dir(r.join("submitted-model")).unwrap();
        fs::write(r.join("submitted-model/model.safetensors"), vec![0u8; 900]).unwrap();
        fs::write(r.join("huge.py"), vec![b'#'; 1200]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("leak")).unwrap();
        std::os::unix::fs::symlink("../../../outside", r.join("dangling")).unwrap();
        std::os::unix::fs::symlink("train.py", r.join("inside")).unwrap();
        let scan = scan_context(r, &opts()).unwrap();
        let mut k = kinds(&scan);
        k.sort();
        assert_eq!(
            k,
            vec![
                (FindingKind::UndeclaredData, "data.jsonl".into()),
                (FindingKind::SymlinkEscape, "dangling".into()),
                (FindingKind::SymlinkEscape, "leak".into()),
                (FindingKind::JunkFile, ".DS_Store".into()),
                (FindingKind::JunkFile, "__MACOSX".into()),
                (FindingKind::FileTooLarge, "huge.py".into()),
                (FindingKind::ContextTooLarge, ".".into()),
            ]
        );
        assert!(!scan.files.iter().any(|f| f.rel.starts_with(".git")));
    }

    #[test]
    fn json_records_are_data_and_a_json_object_is_not() {
        for (head, records) in [
            (&b"[{\"text\": \"a\"}, {\"text\": \"b\"}]"[..], true),
            (b"\xef\xbb\xbf  [\n  {\"a\": 1}", true),
            (b"{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n", true),
            (b"{\"vocab\": {\"a\": 1,\n \"b\": 2}}", false),
            (b"{\"a\": 1}\n", false),
            (b"[1, 2, 3]", false),
            (b"[[\"a\"]]", false),
            (b"", false),
        ] {
            assert_eq!(
                json_head_is_records(head),
                records,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let rows: String = (0..20)
            .map(|i| format!("{{\"text\": \"row {i}\"}}\n"))
            .collect();
        fs::write(r.join("train.json"), &rows).unwrap();
        fs::write(
            r.join("config.json"),
            format!("{{\"pad\": \"{}\"}}", "x".repeat(300)),
        )
        .unwrap();
        fs::write(r.join("small.json"), "[{\"a\": 1}]").unwrap();
        let scan = scan_context(
            r,
            &ContextOptions {
                max_context_bytes: None,
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(
            kinds(&scan),
            vec![(FindingKind::UndeclaredData, "train.json".into())]
        );
    }

    #[test]
    fn notebook_checkpoints_are_junk_and_still_listed_for_the_secret_scan() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("nb/.ipynb_checkpoints")).unwrap();
        fs::write(
            r.join("nb/.ipynb_checkpoints/train-checkpoint.ipynb"),
            b"{}",
        )
        .unwrap();
        fs::create_dir_all(r.join("__pycache__")).unwrap();
        fs::write(r.join("__pycache__/x.py"), b"").unwrap();
        let scan = scan_context(r, &opts()).unwrap();
        assert_eq!(
            kinds(&scan),
            vec![
                (FindingKind::JunkFile, "__pycache__".into()),
                (FindingKind::JunkFile, "nb/.ipynb_checkpoints".into())
            ]
        );
        let files: Vec<&str> = scan.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(files, vec!["nb/.ipynb_checkpoints/train-checkpoint.ipynb"]);
    }

    #[test]
    fn manifest_paths() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::write(r.join("Dockerfile"), b"FROM scratch").unwrap();
        std::os::unix::fs::symlink("/tmp", r.join("out")).unwrap();
        assert!(check_manifest_path(r, "train.dockerfile", "Dockerfile", true).is_none());
        assert_eq!(
            check_manifest_path(r, "f", "../x", true).unwrap().kind,
            FindingKind::PathEscape
        );
        assert_eq!(
            check_manifest_path(r, "f", "/etc/passwd", true)
                .unwrap()
                .kind,
            FindingKind::PathEscape
        );
        assert_eq!(
            check_manifest_path(r, "f", "out", true).unwrap().kind,
            FindingKind::PathEscape
        );
        assert_eq!(
            check_manifest_path(r, "f", "nope", true).unwrap().kind,
            FindingKind::MissingFile
        );
        assert!(check_manifest_path(r, "f", "nope", false).is_none());
    }
}
