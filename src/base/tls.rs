//! The TLS client policy every outgoing connection shares (sync, updates, ADMS, webhooks):
//! rustls with the `ring` provider, a pinned CA when one is configured, the system's roots
//! otherwise.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Builds the rustls client config: the pinned CA when given, the system's roots otherwise.
pub fn client_config(ca_file: Option<&Path>) -> crate::base::error::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::base::error::Error::invalid("TLS", e.to_string()))?;
    let cfg = match ca_file {
        Some(path) => {
            let bad = |why: String| {
                crate::base::error::Error::invalid(format!("sync.ca_file {}", path.display()), why)
            };
            let mut roots = rustls::RootCertStore::empty();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("cannot read: {e}")))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("bad PEM: {e}")))?;
            if certs.is_empty() {
                return Err(bad("holds no CERTIFICATE block".into()));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| crate::base::error::Error::invalid("TLS system roots", e.to_string()))?
                .with_no_client_auth()
        }
    };
    Ok(cfg)
}
