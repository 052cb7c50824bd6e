//! The cluster's PKI and kubeconfig: a CA, a serving certificate for the
//! server's addresses and an admin client certificate (group
//! `system:masters`), created on first start in `<data-dir>/pki`, and the
//! rustls server configuration that verifies client certificates against
//! that CA. File IO only; no network.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS configuration failed: {0}")]
    Config(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// PEM-encoded material the server and its kubeconfig need.
pub struct Pki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub admin_cert: String,
    pub admin_key: String,
}

pub fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(contents.as_bytes()).map_err(io_err(path))
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

fn leaf_params(cn: &str, org: Option<&str>, usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    params
}

/// Loads the CA and admin credentials from `dir`, creating them on first
/// use, and issues a fresh serving certificate for `hosts` (so a changed
/// listen address is always covered).
pub fn ensure_pki(dir: &Path, hosts: &[String]) -> Result<Pki, TlsError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let ca_cert_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    if !ca_cert_path.exists() || !ca_key_path.exists() {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "rkube-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
        let cert = params.self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        std::fs::write(&ca_cert_path, cert.pem()).map_err(io_err(&ca_cert_path))?;
    }
    let ca_cert = read(&ca_cert_path)?;
    let ca_key = KeyPair::from_pem(&read(&ca_key_path)?)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key)?;

    let admin_cert_path = dir.join("admin.crt");
    let admin_key_path = dir.join("admin.key");
    if !admin_cert_path.exists() || !admin_key_path.exists() {
        let key = KeyPair::generate()?;
        let params = leaf_params(
            "kubernetes-admin",
            Some("system:masters"),
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&admin_key_path, &key.serialize_pem())?;
        std::fs::write(&admin_cert_path, cert.pem()).map_err(io_err(&admin_cert_path))?;
    }

    let server_key = KeyPair::generate()?;
    let mut params = leaf_params("rkube-apiserver", None, ExtendedKeyUsagePurpose::ServerAuth);
    let mut sans = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::DnsName("kubernetes".try_into()?),
        SanType::DnsName("kubernetes.default".try_into()?),
        SanType::DnsName("kubernetes.default.svc".try_into()?),
        SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress("::1".parse().expect("valid")),
    ];
    for h in hosts {
        match h.parse::<IpAddr>() {
            Ok(ip) => sans.push(SanType::IpAddress(ip)),
            Err(_) => sans.push(SanType::DnsName(h.as_str().try_into()?)),
        }
    }
    params.subject_alt_names = sans;
    let server_cert = params.signed_by(&server_key, &issuer)?;
    let pki = Pki {
        ca_cert,
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        admin_cert: read(&admin_cert_path)?,
        admin_key: read(&admin_key_path)?,
    };
    write_private(&dir.join("apiserver.key"), &pki.server_key)?;
    std::fs::write(dir.join("apiserver.crt"), &pki.server_cert).map_err(io_err(dir))?;
    Ok(pki)
}

fn certs(pem: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// A rustls server config that asks for client certificates signed by the
/// CA but also admits clients without one (they are anonymous and get 401
/// outside the public endpoints).
pub fn server_config(pki: &Pki) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&pki.ca_cert)? {
        roots.add(c).map_err(|e| TlsError::Config(e.to_string()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| TlsError::Config(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut pki.server_key.as_bytes())
        .map_err(|e| TlsError::Config(e.to_string()))?
        .ok_or_else(|| TlsError::Config("no server key".into()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.server_cert)?, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// PEM credentials of one kubeconfig user.
pub struct ClientCredentials<'a> {
    pub ca_cert: &'a str,
    pub cert: &'a str,
    pub key: &'a str,
    pub user: &'a str,
}

/// A kubeconfig that the stock kubectl (or kube-rs) uses as is.
pub fn client_kubeconfig(creds: &ClientCredentials<'_>, server_url: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: rkube\n  context:\n    cluster: rkube\n    user: {user}\n    namespace: default\ncurrent-context: rkube\npreferences: {{}}\n",
        b64(creds.ca_cert),
        b64(creds.cert),
        b64(creds.key),
        user = creds.user,
    )
}

impl Pki {
    pub fn admin_credentials(&self) -> ClientCredentials<'_> {
        ClientCredentials {
            ca_cert: &self.ca_cert,
            cert: &self.admin_cert,
            key: &self.admin_key,
            user: "rkube-admin",
        }
    }
}

pub fn write_kubeconfig(path: &Path, pki: &Pki, server_url: &str) -> Result<(), TlsError> {
    write_client_kubeconfig(path, &pki.admin_credentials(), server_url)
}

pub fn write_client_kubeconfig(
    path: &Path,
    creds: &ClientCredentials<'_>,
    server_url: &str,
) -> Result<(), TlsError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    write_private(path, &client_kubeconfig(creds, server_url))
}

/// The user a verified client certificate names: CN is the user, each O a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

pub fn identity_from_cert(der: &[u8]) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Some(Identity { user, groups })
}

/// A certificate signed by the CA in `dir` for `cn` (group `org`), with
/// `hosts` as its subject alternative names; (certificate PEM, key PEM).
fn issue_leaf(
    dir: &Path,
    cn: &str,
    org: Option<&str>,
    usage: ExtendedKeyUsagePurpose,
    hosts: &[String],
) -> Result<(String, String), TlsError> {
    let ca_cert = read(&dir.join("ca.crt"))?;
    let ca_key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = leaf_params(cn, org, usage);
    let mut sans = Vec::new();
    for h in hosts {
        match h.parse::<IpAddr>() {
            Ok(ip) => sans.push(SanType::IpAddress(ip)),
            Err(_) => sans.push(SanType::DnsName(h.as_str().try_into()?)),
        }
    }
    params.subject_alt_names = sans;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A serving certificate for a kubelet (`hosts`: its IPs and names),
/// signed by the cluster CA in `dir`; (certificate PEM, key PEM).
pub fn issue_kubelet_serving_cert(
    dir: &Path,
    node: &str,
    hosts: &[String],
) -> Result<(String, String), TlsError> {
    issue_leaf(
        dir,
        &format!("system:node:{node}"),
        Some("system:nodes"),
        ExtendedKeyUsagePurpose::ServerAuth,
        hosts,
    )
}

/// A client certificate for a node's kubelet: user `system:node:<node>`,
/// group `system:nodes`; (certificate PEM, key PEM).
pub fn issue_node_client_cert(dir: &Path, node: &str) -> Result<(String, String), TlsError> {
    issue_leaf(
        dir,
        &format!("system:node:{node}"),
        Some("system:nodes"),
        ExtendedKeyUsagePurpose::ClientAuth,
        &[],
    )
}

fn ca_roots(ca_pem: &str) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca_pem)? {
        roots.add(c).map_err(|e| TlsError::Config(e.to_string()))?;
    }
    Ok(roots)
}

/// A kubelet's server config: its certificate, and client certificates
/// signed by the cluster CA required (no anonymous access).
pub fn kubelet_server_config(
    dir: &Path,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = ca_roots(&read(&dir.join("ca.crt"))?)?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Config(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| TlsError::Config(e.to_string()))?
        .ok_or_else(|| TlsError::Config("no kubelet key".into()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(cert_pem)?, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// How the API server connects to kubelets: trusting the cluster CA and
/// presenting the admin client certificate.
pub fn kubelet_client_config(pki: &Pki) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls_pemfile::private_key(&mut pki.admin_key.as_bytes())
        .map_err(|e| TlsError::Config(e.to_string()))?
        .ok_or_else(|| TlsError::Config("no admin key".into()))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(ca_roots(&pki.ca_cert)?)
        .with_client_auth_cert(certs(&pki.admin_cert)?, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_admin_is_a_master() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_pki(dir.path(), &["10.0.0.1".into()]).unwrap();
        let second = ensure_pki(dir.path(), &[]).unwrap();
        assert_eq!(first.ca_cert, second.ca_cert);
        assert_eq!(first.admin_cert, second.admin_cert);
        let der = certs(&first.admin_cert).unwrap().remove(0);
        let id = identity_from_cert(&der).unwrap();
        assert_eq!(id.user, "kubernetes-admin");
        assert_eq!(id.groups, ["system:masters"]);
        server_config(&first).unwrap();
        let kc = client_kubeconfig(&first.admin_credentials(), "https://127.0.0.1:6443");
        assert!(kc.contains("client-certificate-data"));
    }
}
