//! Joining a node to a server: the join token a server keeps in
//! `<data-dir>/token`, and the credentials it issues to an agent that
//! presents it (a client certificate for `system:node:<name>` in group
//! `system:nodes`, and a serving certificate for the node's kubelet, both
//! signed by the cluster CA).
//!
//! The token is `rk1.<ca-hash>.<secret>`: the agent first fetches the CA
//! over an unverified connection and accepts it only if its SHA-256 is
//! `ca-hash` (so a token is all an agent needs to trust the server), then
//! presents `secret` over a connection verified with that CA. This module
//! is the protocol's pure part plus the token file; the HTTP endpoint is
//! `http/join.rs` and the agent's side `join/client.rs`.

pub mod client;

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::tls::TlsError;

pub const TOKEN_FILE: &str = "token";
/// Served without credentials: the cluster CA certificate (PEM).
pub const CA_PATH: &str = "/rkube/v1/cacerts";
/// Served without credentials: trades a token for node credentials.
pub const JOIN_PATH: &str = "/rkube/v1/join";

const TOKEN_PREFIX: &str = "rk1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Lower-case hex SHA-256 of the CA certificate's DER.
    pub ca_hash: String,
    pub secret: String,
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{TOKEN_PREFIX}.{}.{}", self.ca_hash, self.secret)
    }
}

impl std::str::FromStr for JoinToken {
    type Err = String;

    fn from_str(s: &str) -> Result<JoinToken, String> {
        let bad = || {
            "a join token has the form rk1.<ca-hash>.<secret> (see <data-dir>/token on the server)"
                .to_string()
        };
        let mut parts = s.trim().split('.');
        let (Some(TOKEN_PREFIX), Some(ca_hash), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let hex = |v: &str| v.bytes().all(|b| b.is_ascii_hexdigit());
        if ca_hash.len() != 64 || !hex(ca_hash) || secret.len() < 32 || !hex(secret) {
            return Err(bad());
        }
        Ok(JoinToken {
            ca_hash: ca_hash.to_ascii_lowercase(),
            secret: secret.to_string(),
        })
    }
}

impl JoinToken {
    /// Compares secrets in time independent of where they differ.
    pub fn secret_matches(&self, presented: &str) -> bool {
        let (a, b) = (self.secret.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// SHA-256 (hex) of the first certificate in `ca_pem`.
pub fn ca_hash(ca_pem: &str) -> Result<String, TlsError> {
    let der = rustls_pemfile::certs(&mut ca_pem.as_bytes())
        .next()
        .ok_or_else(|| TlsError::Config("no certificate in the CA file".into()))?
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(sha2::Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The server's token: read from `<data_dir>/token`, or created there on
/// first start (mode 0600).
pub fn ensure_token(data_dir: &Path, ca_pem: &str) -> Result<JoinToken, TlsError> {
    let path = data_dir.join(TOKEN_FILE);
    let io = |source| TlsError::Io {
        path: path.clone(),
        source,
    };
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io)?;
        return text.parse().map_err(TlsError::Config);
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let token = JoinToken {
        ca_hash: ca_hash(ca_pem)?,
        secret,
    };
    crate::tls::write_private(&path, &format!("{token}\n"))?;
    Ok(token)
}

/// What an agent sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    pub secret: String,
    pub node_name: String,
    /// The node's addresses and names, for its kubelet's serving
    /// certificate.
    pub hosts: Vec<String>,
}

/// What the server answers: PEM documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCredentials {
    pub ca_cert: String,
    pub client_cert: String,
    pub client_key: String,
    pub serving_cert: String,
    pub serving_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the join token is not valid")]
    BadToken,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Checks a join request against the server's token and issues the node's
/// credentials from the CA in `pki_dir`.
pub fn issue(
    pki_dir: &Path,
    token: &JoinToken,
    req: &JoinRequest,
) -> Result<NodeCredentials, JoinError> {
    if !token.secret_matches(&req.secret) {
        return Err(JoinError::BadToken);
    }
    let name_ok = !req.node_name.is_empty()
        && req.node_name.len() <= 253
        && req.node_name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !name_ok {
        return Err(JoinError::Invalid(format!(
            "invalid node name {:?}: a lowercase RFC 1123 subdomain is required",
            req.node_name
        )));
    }
    let (client_cert, client_key) = crate::tls::issue_node_client_cert(pki_dir, &req.node_name)?;
    let mut hosts = req.hosts.clone();
    hosts.push(req.node_name.clone());
    let (serving_cert, serving_key) =
        crate::tls::issue_kubelet_serving_cert(pki_dir, &req.node_name, &hosts)?;
    let ca_cert =
        std::fs::read_to_string(pki_dir.join("ca.crt")).map_err(|source| TlsError::Io {
            path: pki_dir.join("ca.crt"),
            source,
        })?;
    Ok(NodeCredentials {
        ca_cert,
        client_cert,
        client_key,
        serving_cert,
        serving_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_malformed_ones_are_refused() {
        let t = JoinToken {
            ca_hash: "ab".repeat(32),
            secret: "0123456789abcdef".repeat(4),
        };
        assert_eq!(t.to_string().parse::<JoinToken>().unwrap(), t);
        for bad in [
            "",
            "rk1",
            "rk1.zz.00",
            "rk2.x.y",
            &format!("rk1.{}.short", "ab".repeat(32)),
        ] {
            assert!(bad.parse::<JoinToken>().is_err(), "{bad}");
        }
        assert!(t.secret_matches(&t.secret));
        assert!(!t.secret_matches("0123"));
    }

    #[test]
    fn a_joined_node_gets_its_identity_and_a_wrong_secret_gets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::tls::ensure_pki(&dir.path().join("pki"), &[]).unwrap();
        let token = ensure_token(dir.path(), &pki.ca_cert).unwrap();
        // Read back, not regenerated.
        assert_eq!(ensure_token(dir.path(), &pki.ca_cert).unwrap(), token);
        assert_eq!(token.ca_hash, ca_hash(&pki.ca_cert).unwrap());
        let mut req = JoinRequest {
            secret: token.secret.clone(),
            node_name: "worker-1".into(),
            hosts: vec!["10.0.0.7".into()],
        };
        let creds = issue(&dir.path().join("pki"), &token, &req).unwrap();
        let der = rustls_pemfile::certs(&mut creds.client_cert.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let id = crate::tls::identity_from_cert(&der).unwrap();
        assert_eq!(id.user, "system:node:worker-1");
        assert_eq!(id.groups, ["system:nodes"]);
        req.secret = "f".repeat(64);
        assert!(matches!(
            issue(&dir.path().join("pki"), &token, &req),
            Err(JoinError::BadToken)
        ));
        req.secret = token.secret.clone();
        req.node_name = "Bad_Name".into();
        assert!(matches!(
            issue(&dir.path().join("pki"), &token, &req),
            Err(JoinError::Invalid(_))
        ));
    }
}
