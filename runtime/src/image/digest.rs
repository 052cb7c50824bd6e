//! sha256 digests: validating them (they become file names, so only
//! `sha256:<64 lowercase hex>` is accepted) and computing them while data
//! streams through.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// The hex part of a well-formed `sha256:` digest, or `None`.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(hex)
}

/// `sha256:<hex>` of `data`.
pub(crate) fn sha256_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Hashes and counts what is read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream, then returns `(sha256:<hex>, bytes)`.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Incremental sha256 for async code that writes chunks itself.
#[derive(Default)]
pub(crate) struct Hasher {
    hasher: Sha256,
    count: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.count += data.len() as u64;
    }
    pub(crate) fn count(&self) -> u64 {
        self.count
    }
    pub(crate) fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.finalize()))
    }
}

/// Hashes the file at `path`: `(sha256:<hex>, size)`.
pub(crate) fn sha256_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let file = std::fs::File::open(path)?;
    HashingReader::new(io::BufReader::new(file)).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_computes() {
        let d = sha256_of(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(sha256_hex(&d).is_some());
        assert!(sha256_hex("sha256:E3B0").is_none());
        assert!(sha256_hex(&d.replace('e', "E")).is_none());
        assert!(sha256_hex("sha512:00").is_none());
        assert!(sha256_hex("sha256:../../../../etc/passwd").is_none());
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut one = [0u8; 1];
        r.read_exact(&mut one).unwrap();
        assert_eq!(r.finish().unwrap(), (sha256_of(b"abc"), 3));
    }
}
