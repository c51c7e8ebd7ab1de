//! Streaming SHA-256 of byte slices, readers, whole files and byte ranges of files.
//!
//! Files are read with plain `read` calls into one fixed-size buffer, so memory stays bounded by
//! [`CHUNK_SIZE`] per hashing thread whatever the file size. `sha2` picks the SHA-NI (x86) or
//! ARMv8 SHA2 code path at run time through `cpufeatures`, so release builds use the CPU's SHA
//! extensions without any target-cpu flag (see docs/digests.md for how that was checked).

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{DigestError, HashCounter, Sha256Digest};
use crate::input_file;

/// How many bytes are read per `read` call. 256 KiB keeps the buffer inside a core's L2 cache,
/// so SHA-256 reads the bytes from L2 right after the kernel copied them there; model-signing
/// reads 1 MiB chunks, which does not change any digest (a stream hash does not see chunking).
pub const CHUNK_SIZE: usize = 256 * 1024;

/// SHA-256 of a byte slice.
pub fn bytes_sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest(Sha256::digest(bytes).into())
}

/// SHA-256 of everything a reader yields, streamed in [`CHUNK_SIZE`] chunks.
pub fn reader_sha256<R: Read>(reader: R) -> io::Result<Sha256Digest> {
    reader_sha256_counted(reader, None)
}

/// [`reader_sha256`], adding each chunk's length to `counter`'s bytes done.
fn reader_sha256_counted<R: Read>(
    mut reader: R,
    counter: Option<&HashCounter>,
) -> io::Result<Sha256Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_SIZE];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(c) = counter {
            c.add_bytes(n as u64);
        }
    }
    Ok(Sha256Digest(hasher.finalize().into()))
}

/// SHA-256 of a whole file, streamed with bounded memory. Follows a symbolic link given as `path`
/// (callers that must refuse links check first, as [`super::digest_path`] does). Anything that
/// is not a regular file when opened (a FIFO swapped in after a walk, a device) is refused
/// unread ([`crate::input_file`]).
pub fn file_sha256(path: &Path) -> Result<Sha256Digest, DigestError> {
    file_sha256_counted(path, None)
}

/// [`file_sha256`], counting the bytes read into `counter`.
pub(super) fn file_sha256_counted(
    path: &Path,
    counter: Option<&HashCounter>,
) -> Result<Sha256Digest, DigestError> {
    let io_err = |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = input_file::open(path, "file to hash")?;
    reader_sha256_counted(file, counter).map_err(io_err)
}

/// SHA-256 of the bytes `[start, end)` of a file: one OMS shard. Fails with
/// [`DigestError::Truncated`] when the file ends before `end` (it changed since it was listed),
/// where model-signing would silently hash fewer bytes.
pub fn range_sha256(path: &Path, start: u64, end: u64) -> Result<Sha256Digest, DigestError> {
    range_sha256_counted(path, start, end, None)
}

/// [`range_sha256`], counting the bytes read into `counter`.
pub(super) fn range_sha256_counted(
    path: &Path,
    start: u64,
    end: u64,
    counter: Option<&HashCounter>,
) -> Result<Sha256Digest, DigestError> {
    let io_err = |source| DigestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = input_file::open(path, "file to hash")?;
    if start > 0 {
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
    }
    let mut hasher = Sha256::new();
    let len = end.saturating_sub(start);
    // The buffer never exceeds the shard, so tiny shards do not allocate a full chunk.
    let cap = usize::try_from(len).map_or(CHUNK_SIZE, |l| l.min(CHUNK_SIZE));
    let mut buf = vec![0u8; cap];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(cap, |l| l.min(cap));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(DigestError::Truncated {
                    path: path.to_path_buf(),
                    offset: start,
                    expected: len,
                    got: len - left,
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        hasher.update(&buf[..n]);
        if let Some(c) = counter {
            c.add_bytes(n as u64);
        }
        left -= n as u64;
    }
    Ok(Sha256Digest(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-2 appendix B.1 test vector: SHA-256("abc").
    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_vector_and_streaming_agree() {
        assert_eq!(bytes_sha256(b"abc").to_string(), ABC);
        let data: Vec<u8> = (0..(3 * CHUNK_SIZE + 17))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        assert_eq!(reader_sha256(&data[..]).unwrap(), bytes_sha256(&data));
    }

    #[test]
    fn ranges_hash_exactly_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 5)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(file_sha256(&p).unwrap(), bytes_sha256(&data));
        for (s, e) in [(0, 1), (3, CHUNK_SIZE + 9), (CHUNK_SIZE * 2, data.len())] {
            assert_eq!(
                range_sha256(&p, s as u64, e as u64).unwrap(),
                bytes_sha256(&data[s..e])
            );
        }
        let err = range_sha256(&p, 0, data.len() as u64 + 1).unwrap_err();
        assert!(matches!(err, DigestError::Truncated { .. }), "{err}");
        let err = file_sha256(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
