//! Client certificate authentication (kube-apiserver `--client-ca-file`): CN is the user name,
//! each O is a group.
//!
//! The TLS layer already verified the chain during the handshake; this re-checks the leaf against
//! the cluster CA at request time, so a certificate from another cluster's CA, or one that expired
//! while a long-lived connection stayed open, is refused.

use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::UnixTime;

use super::{Authenticator, AuthnError, AuthnRequest, UserInfo, with_authenticated_group};
use crate::pki::{ClusterPki, PkiError};

#[doc(alias = "x509.Authenticator")]
pub struct X509Authenticator {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl X509Authenticator {
    pub fn new(pki: &ClusterPki) -> Result<Self, PkiError> {
        Ok(Self {
            verifier: pki.client_cert_verifier()?,
        })
    }

    /// Verifies `chain` (leaf first) against the CA at `now` and maps the leaf's subject to a user.
    pub fn user_from_chain(
        &self,
        chain: &[rustls_pki_types::CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<Option<UserInfo>, AuthnError> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Ok(None);
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| AuthnError(format!("verifying certificate: {e}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| AuthnError(format!("parsing certificate: {e}")))?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            // Upstream: "x509: subject with cn= is not valid".
            return Err(AuthnError("x509: subject with cn= is not valid".into()));
        }
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect();
        Ok(Some(with_authenticated_group(UserInfo {
            name,
            uid: String::new(),
            groups,
            extra: Default::default(),
        })))
    }
}

#[async_trait::async_trait]
impl Authenticator for X509Authenticator {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
        match req.peer_certificates {
            Some(chain) => self.user_from_chain(chain, UnixTime::now()),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn maps_cn_and_o_to_user_and_groups() {
        let pki = ClusterPki::generate("a").unwrap();
        let (cert, _) = pki.issue_client_cert("jane", &["devs"]).unwrap();
        let authn = X509Authenticator::new(&pki).unwrap();
        let user = authn
            .user_from_chain(&[der(&cert)], UnixTime::now())
            .unwrap()
            .unwrap();
        assert_eq!(user.name, "jane");
        assert_eq!(user.groups, vec!["devs", "system:authenticated"]);
    }

    #[test]
    fn refuses_another_clusters_certificate_and_expired_ones() {
        let ours = ClusterPki::generate("a").unwrap();
        let theirs = ClusterPki::generate("b").unwrap();
        let (cert, _) = theirs.issue_admin_cert().unwrap();
        let authn = X509Authenticator::new(&ours).unwrap();
        assert!(
            authn
                .user_from_chain(&[der(&cert)], UnixTime::now())
                .is_err()
        );

        let (cert, _) = ours.issue_admin_cert().unwrap();
        let in_two_years = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            jiff::Timestamp::now().as_second() as u64 + 2 * 366 * 86400,
        ));
        let err = authn
            .user_from_chain(&[der(&cert)], in_two_years)
            .unwrap_err();
        assert!(err.0.contains("verifying certificate"), "{err}");
    }

    #[test]
    fn no_certificate_is_not_an_error() {
        let pki = ClusterPki::generate("a").unwrap();
        let authn = X509Authenticator::new(&pki).unwrap();
        assert_eq!(authn.user_from_chain(&[], UnixTime::now()).unwrap(), None);
    }
}
