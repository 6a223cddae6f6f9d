//! A cluster's PKI: its CA, the API server's serving certificate, the ServiceAccount signing key, and
//! client certificates for kubeconfigs (kubeadm's `/etc/kubernetes/pki`, generated with rcgen).
//!
//! The binary persists these per cluster (`to_files`/`load`) so a restart keeps the CA that users'
//! kubeconfigs trust and the key that already-issued ServiceAccount tokens were signed with.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// SANs of the API serving certificate: loopback, the in-cluster service names and the first IP of
/// EKS's default service CIDR (10.100.0.0/16), which is the `kubernetes` Service's ClusterIP.
pub const SERVING_SANS: &[&str] = &[
    "127.0.0.1",
    "::1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "10.100.0.1",
];

const CA_FILE: &str = "ca.crt";
const CA_KEY_FILE: &str = "ca.key";
const SERVING_FILE: &str = "apiserver.crt";
const SERVING_KEY_FILE: &str = "apiserver.key";
const SA_KEY_FILE: &str = "sa.key";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("PKI file {path}: {error}")]
    Io { path: String, error: String },
    #[error("PKI material is invalid: {0}")]
    Invalid(String),
}

fn gen_err(e: impl std::fmt::Display) -> PkiError {
    PkiError::Generate(e.to_string())
}

/// Every key and certificate of one cluster, as PEM (the form that is persisted and put in
/// kubeconfigs and Secrets).
#[derive(Clone, Debug)]
pub struct ClusterPki {
    pub cluster_name: String,
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// RSA-2048 PKCS#8 key that signs ServiceAccount tokens (RS256, as kube-apiserver's `sa.key`).
    pub sa_key_pem: String,
}

/// `(year, month, day)` `years` from today (rcgen takes dates, not instants). The day is clamped
/// so Feb 29 never produces an invalid date.
fn years_from_now(years: i32) -> (i32, u8, u8) {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    (
        i32::from(now.year()) + years,
        now.month() as u8,
        (now.day() as u8).min(28),
    )
}

/// Yesterday: a day of slack for clocks that disagree slightly (kubeadm back-dates by minutes;
/// rcgen's helper works in whole days).
fn yesterday() -> (i32, u8, u8) {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let z = t.to_zoned(jiff::tz::TimeZone::UTC);
    (i32::from(z.year()), z.month() as u8, z.day() as u8)
}

macro_rules! ymd {
    ($t:expr) => {{
        let (y, m, d) = $t;
        rcgen::date_time_ymd(y, m, d)
    }};
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive INTEGER, non-zero leading byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

impl ClusterPki {
    /// A fresh CA (CN `kubernetes`, 10 years), serving certificate (1 year, [`SERVING_SANS`]) and
    /// ServiceAccount signing key.
    pub fn generate(cluster_name: &str) -> Result<ClusterPki, PkiError> {
        let ca_key = KeyPair::generate().map_err(gen_err)?;
        let ca_params = ca_params(10);
        let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
        let issuer = Issuer::new(ca_params, &ca_key);

        let serving_key = KeyPair::generate().map_err(gen_err)?;
        let mut sp = CertificateParams::new(
            SERVING_SANS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .map_err(gen_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        sp.distinguished_name = dn;
        sp.not_before = ymd!(yesterday());
        sp.not_after = ymd!(years_from_now(1));
        sp.serial_number = Some(random_serial());
        sp.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        sp.use_authority_key_identifier_extension = true;
        let serving = sp.signed_by(&serving_key, &issuer).map_err(gen_err)?;

        let sa_key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(gen_err)?;

        Ok(ClusterPki {
            cluster_name: cluster_name.to_string(),
            ca_cert_pem: ca_cert.pem(),
            ca_key_pem: ca_key.serialize_pem(),
            serving_cert_pem: serving.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            sa_key_pem: sa_key.serialize_pem(),
        })
    }

    /// Writes the five PEM files into `dir` (created if missing); keys are written mode 0600.
    pub fn to_files(&self, dir: &Path) -> Result<(), PkiError> {
        let io = |path: &Path, e: std::io::Error| PkiError::Io {
            path: path.display().to_string(),
            error: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for (name, body, secret) in [
            (CA_FILE, &self.ca_cert_pem, false),
            (CA_KEY_FILE, &self.ca_key_pem, true),
            (SERVING_FILE, &self.serving_cert_pem, false),
            (SERVING_KEY_FILE, &self.serving_key_pem, true),
            (SA_KEY_FILE, &self.sa_key_pem, true),
        ] {
            let path = dir.join(name);
            // Write then rename, so a crash never leaves half a key behind.
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, body).map_err(|e| io(&tmp, e))?;
            #[cfg(unix)]
            if secret {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io(&tmp, e))?;
            }
            #[cfg(not(unix))]
            let _ = secret;
            std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    /// Reads what [`ClusterPki::to_files`] wrote and checks that each key parses.
    pub fn load(dir: &Path, cluster_name: &str) -> Result<ClusterPki, PkiError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| PkiError::Io {
                path: path.display().to_string(),
                error: e.to_string(),
            })
        };
        let pki = ClusterPki {
            cluster_name: cluster_name.to_string(),
            ca_cert_pem: read(CA_FILE)?,
            ca_key_pem: read(CA_KEY_FILE)?,
            serving_cert_pem: read(SERVING_FILE)?,
            serving_key_pem: read(SERVING_KEY_FILE)?,
            sa_key_pem: read(SA_KEY_FILE)?,
        };
        for key in [&pki.ca_key_pem, &pki.serving_key_pem, &pki.sa_key_pem] {
            KeyPair::from_pem(key).map_err(|e| PkiError::Invalid(e.to_string()))?;
        }
        pki.ca_cert_der()?;
        Ok(pki)
    }

    /// Loads the PKI from `dir`, or generates and persists it when `dir` holds none yet.
    pub fn load_or_generate(dir: &Path, cluster_name: &str) -> Result<ClusterPki, PkiError> {
        if dir.join(CA_FILE).exists() {
            return ClusterPki::load(dir, cluster_name);
        }
        let pki = ClusterPki::generate(cluster_name)?;
        pki.to_files(dir)?;
        Ok(pki)
    }

    /// A client certificate signed by the CA (1 year): CN = user name, O = group, as
    /// kube-apiserver's x509 authenticator reads them. Returns `(cert_pem, key_pem)`.
    ///
    /// At most one organization: rcgen's subject holds one value per attribute type, and a
    /// silently dropped group would be worse than an error.
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        organizations: &[&str],
    ) -> Result<(String, String), PkiError> {
        if organizations.len() > 1 {
            return Err(PkiError::Generate(format!(
                "a client certificate carries at most one organization, got {}",
                organizations.len()
            )));
        }
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).map_err(gen_err)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, &ca_key).map_err(gen_err)?;
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for o in organizations {
            dn.push(DnType::OrganizationName, *o);
        }
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        p.not_before = ymd!(yesterday());
        p.not_after = ymd!(years_from_now(1));
        p.serial_number = Some(random_serial());
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &issuer).map_err(gen_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The admin kubeconfig's credentials: CN `kubernetes-admin`, O `system:masters`.
    pub fn issue_admin_cert(&self) -> Result<(String, String), PkiError> {
        self.issue_client_cert("kubernetes-admin", &["system:masters"])
    }

    pub fn ca_cert_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes())
            .map_err(|e| PkiError::Invalid(format!("CA certificate: {e}")))
    }

    /// The CA as a rustls trust store (client-certificate verification, test clients).
    pub fn ca_roots(&self) -> Result<rustls::RootCertStore, PkiError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_cert_der()?)
            .map_err(|e| PkiError::Invalid(format!("CA certificate: {e}")))?;
        Ok(roots)
    }

    /// A verifier for client certificates issued by this cluster's CA. Anonymous clients (no
    /// certificate) pass the handshake: they may still authenticate with a bearer token.
    pub fn client_cert_verifier(
        &self,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, PkiError> {
        rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(self.ca_roots()?),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Invalid(e.to_string()))
    }

    /// The API server's TLS configuration: serving certificate, optional client certificates from
    /// this CA, ALPN `h2` then `http/1.1` (client-go prefers HTTP/2 when offered).
    pub fn server_tls_config(&self) -> Result<rustls::ServerConfig, PkiError> {
        let chain = vec![
            CertificateDer::from_pem_slice(self.serving_cert_pem.as_bytes())
                .map_err(|e| PkiError::Invalid(format!("serving certificate: {e}")))?,
        ];
        let key = PrivateKeyDer::from_pem_slice(self.serving_key_pem.as_bytes())
            .map_err(|e| PkiError::Invalid(format!("serving key: {e}")))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Invalid(e.to_string()))?
        .with_client_cert_verifier(self.client_cert_verifier()?)
        .with_single_cert(chain, key)
        .map_err(|e| PkiError::Invalid(e.to_string()))?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

fn ca_params(valid_years: i32) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kubernetes");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    p.not_before = ymd!(yesterday());
    p.not_after = ymd!(years_from_now(valid_years));
    p.serial_number = Some(random_serial());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_then_persist_and_load_round_trips() {
        let pki = ClusterPki::generate("demo").unwrap();
        let dir = std::env::temp_dir().join(format!("skiff-pki-{}", uuid::Uuid::new_v4()));
        pki.to_files(&dir).unwrap();
        let back = ClusterPki::load(&dir, "demo").unwrap();
        assert_eq!(back.ca_cert_pem, pki.ca_cert_pem);
        assert_eq!(back.sa_key_pem, pki.sa_key_pem);
        // A second load_or_generate keeps the same CA.
        let again = ClusterPki::load_or_generate(&dir, "demo").unwrap();
        assert_eq!(again.ca_cert_pem, pki.ca_cert_pem);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn certificates_carry_the_expected_names() {
        let pki = ClusterPki::generate("demo").unwrap();
        let ca = pki.ca_cert_der().unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
        assert_eq!(
            ca.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "kubernetes"
        );
        assert!(ca.is_ca());
        let validity = ca.validity().time_to_expiration().unwrap();
        assert!(validity.whole_days() > 365 * 9);

        let serving = CertificateDer::from_pem_slice(pki.serving_cert_pem.as_bytes()).unwrap();
        let (_, serving) = x509_parser::parse_x509_certificate(&serving).unwrap();
        let san = serving.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        for want in [
            "IPAddress(7f:00:00:01)",
            "DNSName(kubernetes.default.svc.cluster.local)",
            "IPAddress(0a:64:00:01)",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }

        let (cert, key) = pki.issue_admin_cert().unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            c.subject()
                .iter_organization()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "system:masters"
        );
        assert_eq!(c.issuer(), ca.subject());
    }

    #[test]
    fn sa_key_is_rsa_2048() {
        let pki = ClusterPki::generate("demo").unwrap();
        let kp = KeyPair::from_pem(&pki.sa_key_pem).unwrap();
        assert!(kp.is_compatible(&PKCS_RSA_SHA256));
        // 2048-bit modulus: the SPKI DER of an RSA-2048 key is 294 bytes.
        assert_eq!(
            rcgen::PublicKeyData::subject_public_key_info(&kp).len(),
            294
        );
    }

    #[test]
    fn client_certs_take_one_organization() {
        let pki = ClusterPki::generate("demo").unwrap();
        assert!(pki.issue_client_cert("u", &["a", "b"]).is_err());
        assert!(pki.issue_client_cert("u", &[]).is_ok());
    }

    #[test]
    fn load_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("skiff-pki-{}", uuid::Uuid::new_v4()));
        assert!(matches!(
            ClusterPki::load(&dir, "x"),
            Err(PkiError::Io { .. })
        ));
    }
}
