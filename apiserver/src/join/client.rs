//! The agent's side of joining: fetch the CA, check it against the
//! token's hash, then trade the token's secret for node credentials over a
//! connection verified with that CA. Network IO only; what the documents
//! mean is `join/mod.rs`'s business.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::{ca_hash, JoinRequest, JoinToken, NodeCredentials, CA_PATH, JOIN_PATH};

#[derive(Debug, thiserror::Error)]
pub enum JoinClientError {
    #[error("the server URL {0:?} is not https://host:port")]
    BadUrl(String),
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the server's CA does not match the token's hash: wrong server or wrong token")]
    CaMismatch,
    #[error("the server refused to join this node ({status}): {message}")]
    Refused { status: u16, message: String },
}

/// Accepts any certificate: only for fetching the CA, whose hash is then
/// checked against the token, so nothing read over it is trusted before
/// that check.
#[derive(Debug)]
struct TrustOnHash(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for TrustOnHash {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn host_port(server: &str) -> Result<(String, u16), JoinClientError> {
    let bad = || JoinClientError::BadUrl(server.to_string());
    let rest = server.strip_prefix("https://").ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// One request over a fresh TLS connection; (status, body).
async fn request(
    server: &str,
    tls: rustls::ClientConfig,
    method: http::Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), JoinClientError> {
    let url = format!("{server}{path}");
    let unreachable = |e: String| JoinClientError::Unreachable {
        url: url.clone(),
        message: e,
    };
    let (host, port) = host_port(server)?;
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| unreachable("connect timeout".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let name = ServerName::try_from(host.clone()).map_err(|e| unreachable(e.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("{host}:{port}"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| unreachable(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    Ok((status, body.to_vec()))
}

fn client_config(
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default versions")
}

/// Joins `server` (`https://host:port`) as `node_name`.
pub async fn join(
    server: &str,
    token: &JoinToken,
    node_name: &str,
    hosts: Vec<String>,
) -> Result<NodeCredentials, JoinClientError> {
    let server = server.trim_end_matches('/');
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let blind = client_config(&provider)
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustOnHash(provider.clone())))
        .with_no_client_auth();
    let (status, ca) = request(server, blind, http::Method::GET, CA_PATH, Vec::new()).await?;
    let ca = String::from_utf8_lossy(&ca).into_owned();
    if status != 200 || ca_hash(&ca).ok().as_deref() != Some(token.ca_hash.as_str()) {
        return Err(JoinClientError::CaMismatch);
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca.as_bytes()).flatten() {
        roots.add(c).map_err(|_| JoinClientError::CaMismatch)?;
    }
    let verified = client_config(&provider)
        .with_root_certificates(roots)
        .with_no_client_auth();
    let body = serde_json::to_vec(&JoinRequest {
        secret: token.secret.clone(),
        node_name: node_name.to_string(),
        hosts,
    })
    .expect("serializable");
    let (status, answer) = request(server, verified, http::Method::POST, JOIN_PATH, body).await?;
    if status != 200 {
        let message = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&answer).into_owned());
        return Err(JoinClientError::Refused { status, message });
    }
    serde_json::from_slice(&answer).map_err(|e| JoinClientError::Refused {
        status,
        message: format!("unreadable credentials: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_name_host_and_port() {
        assert_eq!(
            host_port("https://10.0.0.1:6443").unwrap(),
            ("10.0.0.1".to_string(), 6443)
        );
        assert_eq!(
            host_port("https://[::1]:6443/").unwrap(),
            ("::1".to_string(), 6443)
        );
        assert!(host_port("http://10.0.0.1:6443").is_err());
        assert!(host_port("https://10.0.0.1").is_err());
    }
}
