//! Image references as Docker and Kubernetes write them, normalized to
//! `registry/repository[:tag][@digest]`: `busybox` is
//! `docker.io/library/busybox:latest`, the first path component is a
//! registry only when it looks like a host (has a `.` or `:`, or is
//! `localhost`).

use std::fmt;

use crate::error::{Result, RuntimeError};

/// The registry a reference without a host names.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `docker.io`, `127.0.0.1:5000`, `[::1]:5000`, `quay.io`, …
    pub registry: String,
    /// `library/busybox`, `a/b`, …
    pub repository: String,
    /// `latest` when the reference has neither a tag nor a digest.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalizes `reference`; anything malformed is
    /// `InvalidSpec`.
    pub fn parse(reference: &str) -> Result<ImageRef> {
        parse(reference).map_err(|why| {
            RuntimeError::invalid(format!("invalid image reference {reference:?}: {why}"))
        })
    }

    /// `registry/repository`, what tags and digests hang off.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag`, if the reference has a tag.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// `registry/repository@digest` for a given digest.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.name())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self> {
        ImageRef::parse(s)
    }
}

fn parse(reference: &str) -> std::result::Result<ImageRef, String> {
    if reference.is_empty() {
        return Err("empty".into());
    }
    if reference.trim() != reference {
        return Err("surrounding whitespace".into());
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest)?;
            (rest, Some(digest.to_string()))
        }
        None => (reference, None),
    };
    // A tag is whatever follows the last ':' after the last '/', so a
    // registry's port is never mistaken for one.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &rest[last_slash + i + 1..];
            check_tag(tag)?;
            (&rest[..last_slash + i], Some(tag.to_string()))
        }
        None => (rest, None),
    };
    let (registry, repository) = split_registry(name)?;
    for component in repository.split('/') {
        check_component(component)?;
    }
    if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
        return Err(format!("name longer than {MAX_NAME_LEN} characters"));
    }
    let tag = match (tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_string()),
        (tag, _) => tag,
    };
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Splits `name` into registry and repository, applying Docker Hub's
/// defaults (`docker.io`, `library/`).
fn split_registry(name: &str) -> std::result::Result<(String, String), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => {
            check_host(first)?;
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
        DEFAULT_REGISTRY.to_string()
    } else {
        registry
    };
    if repository.is_empty() {
        return Err("empty repository".into());
    }
    let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    Ok((registry, repository))
}

fn looks_like_host(s: &str) -> bool {
    s.contains('.')
        || s.contains(':')
        || s == "localhost"
        || s.starts_with('[')
        || s.chars().any(|c| c.is_ascii_uppercase())
}

/// `host[:port]` where host is a DNS name, an IPv4 address or `[ipv6]`.
fn check_host(s: &str) -> std::result::Result<(), String> {
    let bad = || format!("invalid registry host {s:?}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        match after {
            "" => ("v6", None),
            p => ("v6", Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
            return Err(bad());
        }
        if port.parse::<u32>().map_err(|_| bad())? > 65535 {
            return Err(bad());
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(())
}

/// A repository path component: lowercase alphanumerics joined by single
/// separators `.`, `_`, `__` or runs of `-`.
fn check_component(c: &str) -> std::result::Result<(), String> {
    let bad = || format!("invalid repository component {c:?}");
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

fn check_digest(digest: &str) -> std::result::Result<(), String> {
    if super::digest::sha256_hex(digest).is_some() {
        Ok(())
    } else {
        Err(format!(
            "invalid digest {digest:?} (want sha256:<64 lowercase hex>)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_valid_references() {
        // (input, registry, repository, tag, digest)
        type Case = (
            String,
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "busybox:1.36".into(),
                "docker.io",
                "library/busybox",
                Some("1.36"),
                None,
            ),
            (
                "library/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "docker.io/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/a/b".into(),
                "docker.io",
                "a/b",
                Some("latest"),
                None,
            ),
            (
                "user/app:v1".into(),
                "docker.io",
                "user/app",
                Some("v1"),
                None,
            ),
            (
                "127.0.0.1:5000/busybox".into(),
                "127.0.0.1:5000",
                "busybox",
                Some("latest"),
                None,
            ),
            ("localhost/x".into(), "localhost", "x", Some("latest"), None),
            (
                "localhost:5000/a/b:t".into(),
                "localhost:5000",
                "a/b",
                Some("t"),
                None,
            ),
            (
                "host:8080/a/b/c:tag".into(),
                "host:8080",
                "a/b/c",
                Some("tag"),
                None,
            ),
            (
                "quay.io/a-b/c_d.e__f:V1.0-x".into(),
                "quay.io",
                "a-b/c_d.e__f",
                Some("V1.0-x"),
                None,
            ),
            (
                "[::1]:5000/busybox".into(),
                "[::1]:5000",
                "busybox",
                Some("latest"),
                None,
            ),
            (
                format!("busybox@{D}"),
                "docker.io",
                "library/busybox",
                None,
                Some(D),
            ),
            (format!("reg.io/a:t@{D}"), "reg.io", "a", Some("t"), Some(D)),
        ];
        for (input, registry, repository, tag, digest) in cases {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, registry, "{input}");
            assert_eq!(r.repository, repository, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.as_deref(), digest, "{input}");
        }
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.tagged().unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(r.with_digest(D), format!("docker.io/library/busybox@{D}"));
    }

    #[test]
    fn rejects_invalid_references() {
        let long = format!("a/{}", "b".repeat(300));
        let cases = [
            "",
            " busybox",
            "Busybox",
            "busybox:",
            "busybox:-tag",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "a//b",
            "a/../b",
            "/busybox",
            "busybox/",
            "host:port/x",
            "host:99999/x",
            "bad_host.io/x",
            "a..b/c",
            "-a/b",
            "a/b-",
            "a/b:t:u",
            long.as_str(),
        ];
        for input in cases {
            let err = ImageRef::parse(input).expect_err(input);
            assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{input}");
        }
    }
}
