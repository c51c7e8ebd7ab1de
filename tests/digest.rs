//! The digest module against the reference: every root digest and manifest reprobox computes must
//! equal what the `model-signing` package (PyPI, 1.1.1) computes for the same tree, in files and
//! shards mode. The reference runs through tests/fixtures/digest/oms_hash.py with the venv python
//! (`REPROBOX_TEST_PYTHON`, else `<repo>/.venv/bin/python`); when it is missing the tests fail with
//! a hint to run scripts/setup.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use reprobox::digest::{
    self, DEFAULT_SHARD_SIZE, DigestError, DigestMode, DigestOptions, Sha256Digest, TreeDigest,
};
use serde_json::Value;

const SETUP_HINT: &str = "run `REPROBOX_SETUP_SKIP_BUILD=1 scripts/setup` (it installs model-signing==1.1.1 into the venv), or set REPROBOX_TEST_PYTHON";

fn python() -> PathBuf {
    let p = std::env::var_os("REPROBOX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python not found at {} (hint: {SETUP_HINT})",
        p.display()
    );
    p
}

/// model-signing's manifest of `path`, as printed by the fixture script.
fn reference(path: &Path, opts: &DigestOptions) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/digest/oms_hash.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script).arg(path);
    match opts.mode {
        DigestMode::Files => cmd.arg("files"),
        DigestMode::Shards { shard_size } => {
            cmd.args(["shards", "--shard-size", &shard_size.to_string()])
        }
    };
    if opts.allow_symlinks {
        cmd.arg("--allow-symlinks");
    }
    for p in &opts.ignore_paths {
        cmd.arg("--ignore").arg(p);
    }
    let out = cmd.output().expect("cannot start python");
    assert!(
        out.status.success(),
        "the model-signing reference failed ({}): {} (hint: {SETUP_HINT})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reference script printed no JSON")
}

/// Asserts that reprobox and model-signing agree on the root, every resource and the
/// serialization; returns our digest.
fn assert_parity(path: &Path, opts: &DigestOptions) -> TreeDigest {
    let want = reference(path, opts);
    assert!(
        want.get("error").is_none(),
        "model-signing refused {}: {want}",
        path.display()
    );
    let ours = digest::digest_path(path, opts).unwrap_or_else(|e| panic!("reprobox failed: {e}"));
    let ours_names: Vec<(String, String, String)> = ours
        .resources
        .iter()
        .map(|r| (r.name.clone(), ours.hash_type.clone(), r.digest.to_string()))
        .collect();
    let want_names: Vec<(String, String, String)> = want["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("name"), s("algorithm"), s("digest"))
        })
        .collect();
    assert_eq!(
        ours_names,
        want_names,
        "manifests differ for {} ({:?})",
        path.display(),
        opts
    );
    assert_eq!(
        ours.root.to_string(),
        want["root"].as_str().unwrap(),
        "root differs"
    );
    assert_eq!(want["predicate_type"], digest::PREDICATE_TYPE);
    let ser = &want["serialization"];
    assert_eq!(ser["method"], ours.serialization.method);
    assert_eq!(ser["hash_type"], ours.serialization.hash_type);
    assert_eq!(ser["allow_symlinks"], ours.serialization.allow_symlinks);
    assert_eq!(
        ser.get("shard_size").and_then(Value::as_u64),
        ours.serialization.shard_size
    );
    let mut want_ignored: Vec<String> = ser["ignore_paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    want_ignored.sort();
    assert_eq!(want_ignored, ours.serialization.ignore_paths);
    assert_eq!(ours.recompute_root(), ours.root);
    ours
}

/// Deterministic pseudo-random bytes (xorshift64*), so shards of one file differ.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn put(root: &Path, rel: &str, len: usize) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, bytes(len as u64 ^ rel.len() as u64, len)).unwrap();
}

/// A model-like tree with every case the issue lists; shard tests use a 1000-byte shard.
fn model_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for (rel, len) in [
        ("config.json", 321),
        ("empty", 0),
        ("sub/empty.bin", 0),
        ("nested/a/b/c/deep.bin", 777),
        ("big_multiple.bin", 10_000), // exactly 10 shards of 1000
        ("one_shard.bin", 1000),      // exactly one shard
        ("one_plus.bin", 1001),       // a shard plus one byte
        ("odd.bin", 2_501),
        ("données/ünïcode ✓.txt", 42),
        ("日本語/重み.bin", 1500),
        ("x/y", 5),
        ("x-y", 6),
        ("x.z", 7),
        ("X", 8),
        ("with space", 9),
        ("colon:name", 10),
        (".hidden", 11),
        ("sub/.gitignore", 12), // only the top-level git paths are ignored
        (".git/HEAD", 23),
        (".git/objects/ab/cdef", 2_000),
        (".gitignore", 13),
        (".gitattributes", 14),
        (".github/workflows/ci.yml", 15),
    ] {
        put(r, rel, len);
    }
    fs::create_dir_all(r.join("empty_dir/inner")).unwrap();
    dir
}

fn shards(shard_size: u64) -> DigestOptions {
    DigestOptions {
        mode: DigestMode::Shards { shard_size },
        ..Default::default()
    }
}

#[test]
fn files_mode_matches_model_signing() {
    let dir = model_tree();
    let d = assert_parity(dir.path(), &DigestOptions::default());
    let names: Vec<&str> = d.resources.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"empty") && names.contains(&"sub/.gitignore"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with(".git")), "{names:?}");
    assert_eq!(d.hash_type, "sha256");
}

#[test]
fn shards_mode_matches_model_signing() {
    let dir = model_tree();
    for size in [1000, 999, 10_000, DEFAULT_SHARD_SIZE] {
        let d = assert_parity(dir.path(), &shards(size));
        assert_eq!(d.hash_type, format!("sha256-sharded-{size}"));
        assert!(!d.resources.iter().any(|r| r.name.starts_with("empty:")));
    }
    let d = digest::digest_path(dir.path(), &shards(1000)).unwrap();
    let big: Vec<&str> = d
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| n.starts_with("big_multiple.bin:"))
        .collect();
    assert_eq!(big.len(), 10);
    assert_eq!(big.last(), Some(&"big_multiple.bin:9000:10000"));
}

#[test]
fn random_trees_match_model_signing() {
    for seed in 1..=3u64 {
        let dir = tempfile::tempdir().unwrap();
        let noise = bytes(seed, 64);
        for i in 0..12 {
            let depth = noise[i] % 3;
            let mut rel = String::new();
            for d in 0..depth {
                rel.push_str(&format!("d{}/", noise[i + d as usize + 1] % 3));
            }
            rel.push_str(&format!("f{i}"));
            let len = (noise[i + 20] as usize) * (noise[i + 40] as usize % 40);
            put(dir.path(), &rel, len);
        }
        let shard = 1 + u64::from(noise[63]) * 7;
        assert_parity(dir.path(), &DigestOptions::default());
        assert_parity(dir.path(), &shards(shard));
    }
}

#[test]
fn single_file_and_empty_tree_match_model_signing() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "model.safetensors", 2500);
    let file = dir.path().join("model.safetensors");
    let d = assert_parity(&file, &DigestOptions::default());
    assert_eq!(d.resources[0].name, ".");
    assert_eq!(d.resources[0].digest, digest::file_sha256(&file).unwrap());
    let d = assert_parity(&file, &shards(1000));
    assert_eq!(d.resources.len(), 3);
    assert!(matches!(
        digest::digest_tree(&file, &DigestOptions::default()),
        Err(DigestError::NotADirectory { .. })
    ));

    let empty = tempfile::tempdir().unwrap();
    let d = assert_parity(empty.path(), &DigestOptions::default());
    assert_eq!(d.root, digest::bytes_sha256(b""));
    assert_parity(empty.path(), &shards(1000));
}

#[test]
fn ignore_paths_match_model_signing() {
    let dir = model_tree();
    let opts = DigestOptions {
        ignore_paths: vec!["nested/a".into(), "config.json".into(), "./x".into()],
        ..Default::default()
    };
    let d = assert_parity(dir.path(), &opts);
    assert!(
        !d.resources
            .iter()
            .any(|r| r.name.starts_with("nested/") || r.name == "x/y")
    );
    assert!(d.resources.iter().any(|r| r.name == "x-y"));
}

#[test]
fn symlinks_refused_unless_allowed_then_followed_like_model_signing() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    put(dir.path(), "real/w.bin", 1234);
    put(outside.path(), "shared.bin", 99);
    std::os::unix::fs::symlink("real/w.bin", dir.path().join("link.bin")).unwrap();
    std::os::unix::fs::symlink("real", dir.path().join("linked_dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("shared.bin"),
        dir.path().join("out.bin"),
    )
    .unwrap();

    let err = digest::digest_path(dir.path(), &DigestOptions::default()).unwrap_err();
    assert!(matches!(err, DigestError::Symlink { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        ["link.bin", "linked_dir", "out.bin"]
            .iter()
            .any(|n| msg.contains(n)),
        "the error names no link: {msg}"
    );
    assert!(
        reference(dir.path(), &DigestOptions::default())
            .get("error")
            .is_some()
    );

    let allow = DigestOptions {
        allow_symlinks: true,
        ..Default::default()
    };
    let d = assert_parity(dir.path(), &allow);
    let names: Vec<&str> = d.resources.iter().map(|r| r.name.as_str()).collect();
    // A link to a directory is neither hashed nor entered; links to files hash the target.
    assert_eq!(names, ["link.bin", "out.bin", "real/w.bin"]);
    assert_eq!(d.resources[0].digest, d.resources[2].digest);
    assert_parity(
        dir.path(),
        &DigestOptions {
            mode: DigestMode::Shards { shard_size: 500 },
            ..allow.clone()
        },
    );

    // A link as the root itself follows the same policy.
    let root_link = outside.path().join("root_link");
    std::os::unix::fs::symlink(dir.path().join("real"), &root_link).unwrap();
    assert!(matches!(
        digest::digest_path(&root_link, &DigestOptions::default()),
        Err(DigestError::Symlink { .. })
    ));
    assert_parity(&root_link, &allow);

    // A dangling link is refused even when links are allowed.
    std::os::unix::fs::symlink("nowhere", dir.path().join("dangling")).unwrap();
    let err = digest::digest_path(dir.path(), &allow).unwrap_err();
    assert!(err.to_string().contains("dangling"), "{err}");
    assert!(reference(dir.path(), &allow).get("error").is_some());
}

#[test]
fn special_files_are_always_refused_even_inside_git() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "w.bin", 10);
    let fifo = dir.path().join(".git/fifo");
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    for allow_symlinks in [false, true] {
        let opts = DigestOptions {
            allow_symlinks,
            ..Default::default()
        };
        let err = digest::digest_path(dir.path(), &opts).unwrap_err();
        assert!(
            matches!(&err, DigestError::SpecialFile { kind: "fifo", path } if path == &fifo),
            "{err}"
        );
        assert!(reference(dir.path(), &opts).get("error").is_some());
    }
    fs::remove_file(&fifo).unwrap();
    let sock = dir.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let err = digest::digest_path(dir.path(), &DigestOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("socket") && err.to_string().contains("sock"),
        "{err}"
    );
}

#[test]
fn file_and_bytes_helpers_agree_with_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), "blob", 3 * digest::CHUNK_SIZE + 11);
    let path = dir.path().join("blob");
    let ours = digest::file_sha256(&path).unwrap();
    assert_eq!(ours, digest::bytes_sha256(&fs::read(&path).unwrap()));
    let out = Command::new("sha256sum")
        .arg(&path)
        .output()
        .expect("sha256sum");
    let hex = String::from_utf8(out.stdout).unwrap();
    let want: Sha256Digest = format!("sha256:{}", &hex[..64]).parse().unwrap();
    assert_eq!(ours, want);
}

fn reprobox(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reprobox"))
        .arg("hash")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_prints_root_and_manifest() {
    let dir = model_tree();
    let p = dir.path().as_os_str();
    let out = reprobox(&[p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = digest::digest_path(dir.path(), &DigestOptions::default()).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        lib.root.to_string()
    );

    let out = reprobox(&[
        p,
        "--shard-size".as_ref(),
        "1000".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lib = digest::digest_path(dir.path(), &shards(1000)).unwrap();
    assert_eq!(json["root"], lib.root.to_string());
    assert_eq!(json["hash_type"], "sha256-sharded-1000");
    assert_eq!(json["predicate_type"], digest::PREDICATE_TYPE);
    assert_eq!(json["serialization"]["shard_size"], 1000);
    assert_eq!(
        json["resources"].as_array().unwrap().len(),
        lib.resources.len()
    );
    assert_eq!(json["resources"][0]["name"], lib.resources[0].name);
    assert_eq!(
        json["resources"][0]["digest"],
        lib.resources[0].digest.to_string()
    );
}

#[test]
fn cli_unreadable_path_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let out = reprobox(&[missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-model") && err.contains("hint:"),
        "{err}"
    );

    put(dir.path(), "m/w.bin", 10);
    std::os::unix::fs::symlink("w.bin", dir.path().join("m/alias.bin")).unwrap();
    let m = dir.path().join("m");
    let out = reprobox(&[m.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("alias.bin"));
    let out = reprobox(&[m.as_os_str(), "--allow-symlinks".as_ref()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = reprobox(&[m.as_os_str(), "--shard-size".as_ref(), "0".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
}
