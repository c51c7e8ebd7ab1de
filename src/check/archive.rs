//! The secret scan inside archives: members of `.zip`, `.tar`, `.tar.gz` and `.tgz` files in the
//! submission are scanned as if they were files of their own.
//!
//! An archive is untrusted input, so every cost is capped: at most [`ArchiveLimits::max_members`]
//! members, at most [`super::secrets::MAX_SCAN_BYTES`] of each member, and at most
//! [`ArchiveLimits::max_total_bytes`] decompressed bytes per archive, skipped bytes of a
//! compressed tar included (skipping a member of a gzip stream means decompressing it). A member
//! that expands more than [`ArchiveLimits::max_ratio`] times its compressed size is a zip bomb:
//! an `archive_bomb` finding, never a hang. An archive scanned only in part, or not at all (it is
//! corrupt, or a member is encrypted), is an `archive_not_scanned` warning saying how far the scan
//! got. Archives inside archives are not opened.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::secrets::{self, BINARY_SNIFF_BYTES, MAX_SCAN_BYTES};
use crate::finding::{Finding, FindingKind};

/// The archive formats whose members are scanned, chosen by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
}

impl ArchiveKind {
    /// The kind of archive a file name says it is, if any.
    pub fn of(name: &str) -> Option<ArchiveKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".zip") {
            Some(ArchiveKind::Zip)
        } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            Some(ArchiveKind::TarGz)
        } else if lower.ends_with(".tar") {
            Some(ArchiveKind::Tar)
        } else {
            None
        }
    }
}

/// What one archive may cost the scan.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Members looked at; the rest are reported as not scanned.
    pub max_members: usize,
    /// Bytes read from one member (the rest of it is not scanned, as for plain files).
    pub max_member_bytes: u64,
    /// Decompressed bytes read from the whole archive, skipped members of a gzip stream included.
    pub max_total_bytes: u64,
    /// A member (or a gzip stream) expanding more than this many times its compressed size ...
    pub max_ratio: u64,
    /// ... to at least this many bytes is a bomb.
    pub bomb_min_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_members: 10_000,
            max_member_bytes: MAX_SCAN_BYTES,
            max_total_bytes: 256 * 1024 * 1024,
            max_ratio: 100,
            bomb_min_bytes: 16 * 1024 * 1024,
        }
    }
}

const HINT_BOMB: &str = "remove the archive: reprobox does not unpack it, and a build step that does would exhaust the disk or memory; ship data as declared inputs instead";
const HINT_PARTIAL: &str = "the rest of the archive was not checked for secrets; unpack it into the submission, or remove it and declare its data as an input";

/// Scans the members of the archive at `path` for secrets. `label` is the archive's path in
/// findings; each member finding names the member and its line in the message.
pub fn scan_archive(
    path: &Path,
    label: &str,
    kind: ArchiveKind,
    limits: &ArchiveLimits,
) -> Vec<Finding> {
    let mut scan = Scan {
        label,
        limits,
        findings: Vec::new(),
        members: 0,
        total: 0,
    };
    // A file swapped for a FIFO or a device after the walk listed it is refused, never read.
    let outcome = match crate::input_file::open(path, "archive") {
        Err(e) => Err(Stop::Unreadable(e.to_string())),
        Ok(file) => match kind {
            ArchiveKind::Zip => scan.zip(file),
            ArchiveKind::Tar => scan.tar(file),
            ArchiveKind::TarGz => scan.tar_gz(file),
        },
    };
    if let Err(stop) = outcome {
        scan.stopped(stop);
    }
    scan.findings
}

/// Why a scan ended before the archive's end.
#[derive(Debug)]
enum Stop {
    /// The archive (or a member) could not be read.
    Unreadable(String),
    /// [`ArchiveLimits::max_members`] reached.
    Members,
    /// [`ArchiveLimits::max_total_bytes`] reached.
    Bytes,
    /// A gzip stream expanded beyond [`ArchiveLimits::max_ratio`].
    Bomb { compressed: u64, expanded: u64 },
}

struct Scan<'a> {
    label: &'a str,
    limits: &'a ArchiveLimits,
    findings: Vec<Finding>,
    members: usize,
    total: u64,
}

impl Scan<'_> {
    fn zip(&mut self, file: File) -> Result<(), Stop> {
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| Stop::Unreadable(format!("not a readable zip archive: {e}")))?;
        for i in 0..archive.len() {
            self.count_member()?;
            let mut member = archive
                .by_index(i)
                .map_err(|e| Stop::Unreadable(format!("member {}: {e}", i + 1)))?;
            if member.is_dir() {
                continue;
            }
            let name = member.name().to_owned();
            let (size, compressed) = (member.size(), member.compressed_size());
            if self.is_bomb(compressed, size) {
                self.bomb(Some(&name), compressed, size);
                continue;
            }
            let buf = self.read_member(&mut member)?;
            self.scan_member(&name, &buf);
        }
        Ok(())
    }

    fn tar(&mut self, file: File) -> Result<(), Stop> {
        // With seek, members that are not read are skipped without reading them.
        let mut archive = tar::Archive::new(file);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| Stop::Unreadable(format!("not a readable tar archive: {e}")))?;
        self.tar_entries(entries)
    }

    fn tar_gz(&mut self, file: File) -> Result<(), Stop> {
        let compressed = Counting::new(BufReader::new(file));
        let compressed_seen = compressed.seen.clone();
        let decoder = flate2::read::GzDecoder::new(compressed);
        let capped = Capped {
            inner: decoder,
            read: 0,
            cap: self.limits.max_total_bytes,
            compressed: compressed_seen,
            limits: *self.limits,
            stop: None,
        };
        let mut archive = tar::Archive::new(capped);
        let result = match archive.entries() {
            Err(e) => Err(Stop::Unreadable(format!(
                "not a readable tar.gz archive: {e}"
            ))),
            Ok(entries) => self.tar_entries(entries),
        };
        // A cap hit inside the decoder surfaces as an I/O error from tar: report the cap.
        match archive.into_inner().stop.take() {
            Some(stop) => Err(stop),
            None => result,
        }
    }

    fn tar_entries<R: Read>(&mut self, entries: tar::Entries<'_, R>) -> Result<(), Stop> {
        for entry in entries {
            self.count_member()?;
            let mut entry = entry.map_err(|e| Stop::Unreadable(e.to_string()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| format!("member {}", self.members));
            let buf = self.read_member(&mut entry)?;
            self.scan_member(&name, &buf);
        }
        Ok(())
    }

    fn count_member(&mut self) -> Result<(), Stop> {
        if self.members >= self.limits.max_members {
            return Err(Stop::Members);
        }
        self.members += 1;
        Ok(())
    }

    fn is_bomb(&self, compressed: u64, expanded: u64) -> bool {
        expanded >= self.limits.bomb_min_bytes
            && expanded / compressed.max(1) > self.limits.max_ratio
    }

    /// Reads the scanned prefix of one member, charging it to the archive's total.
    fn read_member(&mut self, member: &mut impl Read) -> Result<Vec<u8>, Stop> {
        let left = self.limits.max_total_bytes.saturating_sub(self.total);
        if left == 0 {
            return Err(Stop::Bytes);
        }
        let mut buf = Vec::new();
        member
            .take(self.limits.max_member_bytes.min(left))
            .read_to_end(&mut buf)
            .map_err(|e| Stop::Unreadable(e.to_string()))?;
        self.total = self.total.saturating_add(buf.len() as u64);
        Ok(buf)
    }

    fn scan_member(&mut self, name: &str, buf: &[u8]) {
        if buf[..buf.len().min(BINARY_SNIFF_BYTES)].contains(&0) {
            return;
        }
        let file_name = name.rsplit('/').next().unwrap_or(name);
        for mut f in secrets::scan_bytes(buf, name, file_name) {
            let at = match f.line.take() {
                Some(line) => format!("archive member `{name}`, line {line}"),
                None => format!("archive member `{name}`"),
            };
            f.message = format!("{} ({at})", f.message);
            f.path = Some(self.label.to_owned());
            self.findings.push(f);
        }
    }

    fn bomb(&mut self, member: Option<&str>, compressed: u64, expanded: u64) {
        let what = match member {
            Some(m) => format!("archive member `{m}` expands"),
            None => "the gzip stream expands".to_owned(),
        };
        self.findings.push(
            Finding::error(
                FindingKind::ArchiveBomb,
                format!(
                    "{what} from {compressed} to at least {expanded} bytes (more than {}:1): a decompression bomb; not unpacked",
                    self.limits.max_ratio
                ),
                HINT_BOMB,
            )
            .at(self.label),
        );
    }

    fn stopped(&mut self, stop: Stop) {
        let scanned = format!("{} member(s) scanned", self.members.saturating_sub(1));
        let message = match stop {
            Stop::Bomb {
                compressed,
                expanded,
            } => return self.bomb(None, compressed, expanded),
            Stop::Unreadable(why) => {
                format!("archive not fully scanned for secrets: {why} ({scanned})")
            }
            Stop::Members => format!(
                "archive has more than {} members; only the first {} were scanned for secrets",
                self.limits.max_members, self.limits.max_members
            ),
            Stop::Bytes => format!(
                "archive expands to more than {} bytes; the scan for secrets stopped there ({scanned})",
                self.limits.max_total_bytes
            ),
        };
        self.findings.push(
            Finding::warning(FindingKind::ArchiveNotScanned, message, HINT_PARTIAL).at(self.label),
        );
    }
}

/// Counts the bytes read through it, shared with whoever holds a clone of `seen`.
struct Counting<R> {
    inner: R,
    seen: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R> Counting<R> {
    fn new(inner: R) -> Self {
        Counting {
            inner,
            seen: Default::default(),
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.set(self.seen.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// The decompressed side of a gzip stream: fails the read once `cap` bytes came out, or once the
/// output outgrows the compressed input by more than the bomb ratio, and remembers why.
struct Capped<R> {
    inner: R,
    read: u64,
    cap: u64,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
    limits: ArchiveLimits,
    stop: Option<Stop>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_some() {
            return Err(io::Error::other("archive scan stopped"));
        }
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        let compressed = self.compressed.get();
        if self.read >= self.limits.bomb_min_bytes
            && self.read / compressed.max(1) > self.limits.max_ratio
        {
            self.stop = Some(Stop::Bomb {
                compressed,
                expanded: self.read,
            });
        } else if self.read > self.cap {
            self.stop = Some(Stop::Bytes);
        }
        match self.stop {
            Some(_) => Err(io::Error::other("archive scan stopped")),
            None => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake_hf() -> String {
        format!("{}{}", "hf", "_") + &"aBcD1234".repeat(5)
    }

    fn small() -> ArchiveLimits {
        ArchiveLimits {
            max_members: 5,
            max_member_bytes: 1024 * 1024,
            max_total_bytes: 4 * 1024 * 1024,
            max_ratio: 100,
            bomb_min_bytes: 1024 * 1024,
        }
    }

    fn kinds(f: &[Finding]) -> Vec<FindingKind> {
        f.iter().map(|f| f.kind).collect()
    }

    fn write_zip(path: &Path, members: &[(&str, &[u8])]) {
        let mut z = zip::ZipWriter::new(File::create(path).unwrap());
        let opts =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            z.start_file(*name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }

    fn tar_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *bytes).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn kinds_by_name() {
        assert_eq!(ArchiveKind::of("a/B.ZIP"), Some(ArchiveKind::Zip));
        assert_eq!(ArchiveKind::of("x.tar.gz"), Some(ArchiveKind::TarGz));
        assert_eq!(ArchiveKind::of("x.tgz"), Some(ArchiveKind::TarGz));
        assert_eq!(ArchiveKind::of("x.tar"), Some(ArchiveKind::Tar));
        assert_eq!(ArchiveKind::of("x.gz"), None);
        assert_eq!(ArchiveKind::of("zip.py"), None);
    }

    #[test]
    fn a_secret_in_a_member_of_each_format_is_found_with_member_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let env = format!("A=1\nHF_TOKEN={}\n", fake_hf());
        let members: [(&str, &[u8]); 2] = [
            ("code/train.py", b"print(1)\n"),
            ("cfg/.env", env.as_bytes()),
        ];
        let z = dir.path().join("a.zip");
        write_zip(&z, &members);
        let t = dir.path().join("a.tar");
        std::fs::write(&t, tar_bytes(&members)).unwrap();
        let g = dir.path().join("a.tar.gz");
        std::fs::write(&g, gz(&tar_bytes(&members))).unwrap();
        for (path, kind) in [
            (z, ArchiveKind::Zip),
            (t, ArchiveKind::Tar),
            (g, ArchiveKind::TarGz),
        ] {
            let f = scan_archive(&path, "data/a", kind, &small());
            assert_eq!(
                kinds(&f),
                vec![FindingKind::SecretInContext],
                "{kind:?}: {f:?}"
            );
            assert_eq!(f[0].path.as_deref(), Some("data/a"));
            assert_eq!(f[0].line, None);
            assert!(
                f[0].message.contains("archive member `cfg/.env`, line 2"),
                "{}",
                f[0].message
            );
            assert!(!f[0].message.contains(&fake_hf()));
        }
    }

    #[test]
    fn a_clean_archive_has_no_finding() {
        let dir = tempfile::tempdir().unwrap();
        let z = dir.path().join("a.zip");
        let mut w = zip::ZipWriter::new(File::create(&z).unwrap());
        w.add_directory("b/", zip::write::FileOptions::default())
            .unwrap();
        w.start_file("b/a.txt", zip::write::FileOptions::default())
            .unwrap();
        w.write_all(b"hello\n").unwrap();
        w.finish().unwrap();
        assert!(scan_archive(&z, "a.zip", ArchiveKind::Zip, &small()).is_empty());
    }

    #[test]
    fn a_zip_bomb_member_is_a_finding_and_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let z = dir.path().join("bomb.zip");
        let zeros = vec![0u8; 8 * 1024 * 1024];
        let secret = format!("HF_TOKEN={}\n", fake_hf());
        write_zip(&z, &[("zeros.bin", &zeros), ("s.env", secret.as_bytes())]);
        let f = scan_archive(&z, "bomb.zip", ArchiveKind::Zip, &small());
        assert_eq!(
            kinds(&f),
            vec![FindingKind::ArchiveBomb, FindingKind::SecretInContext],
            "{f:?}"
        );
        assert!(f[0].message.contains("`zeros.bin`"), "{}", f[0].message);
    }

    #[test]
    fn a_gzip_bomb_stops_the_scan_with_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let g = dir.path().join("bomb.tgz");
        // One 32 MiB member of zeros compresses about 1000:1; the scan must stop long before
        // decompressing all of it while skipping the member.
        let zeros = vec![0u8; 32 * 1024 * 1024];
        std::fs::write(&g, gz(&tar_bytes(&[("zeros.bin", &zeros)]))).unwrap();
        let limits = ArchiveLimits {
            max_member_bytes: 4096,
            max_total_bytes: 1024 * 1024 * 1024,
            ..small()
        };
        let f = scan_archive(&g, "bomb.tgz", ArchiveKind::TarGz, &limits);
        assert_eq!(kinds(&f), vec![FindingKind::ArchiveBomb], "{f:?}");
        assert!(f[0].message.contains("gzip stream"), "{}", f[0].message);
    }

    #[test]
    fn member_count_and_total_bytes_are_capped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let many: Vec<(String, Vec<u8>)> = (0..8)
            .map(|i| (format!("m{i}.txt"), b"x\n".to_vec()))
            .collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let t = dir.path().join("many.tar");
        std::fs::write(&t, tar_bytes(&refs)).unwrap();
        let f = scan_archive(&t, "many.tar", ArchiveKind::Tar, &small());
        assert_eq!(kinds(&f), vec![FindingKind::ArchiveNotScanned], "{f:?}");
        assert!(
            f[0].message.contains("more than 5 members"),
            "{}",
            f[0].message
        );

        // Random-looking text does not compress, so it is no bomb, but it passes the byte cap.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let text: Vec<u8> = (0..3 * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'a' + (x % 26) as u8
            })
            .collect();
        let g = dir.path().join("big.tar.gz");
        std::fs::write(&g, gz(&tar_bytes(&[("a.txt", &text), ("b.txt", &text)]))).unwrap();
        let f = scan_archive(&g, "big.tar.gz", ArchiveKind::TarGz, &small());
        assert_eq!(kinds(&f), vec![FindingKind::ArchiveNotScanned], "{f:?}");
        assert!(f[0].message.contains("stopped there"), "{}", f[0].message);
    }

    #[test]
    fn a_corrupt_archive_is_a_warning_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, kind) in [("c.zip", ArchiveKind::Zip), ("c.tgz", ArchiveKind::TarGz)] {
            let p = dir.path().join(name);
            std::fs::write(&p, b"PK\x03\x04 definitely not an archive").unwrap();
            let f = scan_archive(&p, name, kind, &small());
            assert_eq!(
                kinds(&f),
                vec![FindingKind::ArchiveNotScanned],
                "{name}: {f:?}"
            );
        }
    }
}
