//! A real TLS handshake with the cluster PKI: serving certificate, client certificates, and the
//! x509 authenticator reading the verified peer chain (tokio-rustls client and server in-process).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use skiff_apiserver::authn::x509::X509Authenticator;
use skiff_apiserver::authn::{Authenticator, AuthnRequest, UserInfo};
use skiff_apiserver::pki::ClusterPki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn client_config(pki: &ClusterPki, cert: Option<(String, String)>) -> rustls::ClientConfig {
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(pki.ca_roots().unwrap());
    match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    }
}

/// Serves one connection; returns the user the x509 authenticator saw (None: anonymous), or the
/// handshake error.
async fn handshake(
    server_pki: &ClusterPki,
    client: rustls::ClientConfig,
    server_name: &str,
) -> Result<Option<UserInfo>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor =
        tokio_rustls::TlsAcceptor::from(Arc::new(server_pki.server_tls_config().unwrap()));
    let authn = X509Authenticator::new(server_pki).unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
        let peer: Option<Vec<CertificateDer<'static>>> =
            conn.peer_certificates().map(|c| c.to_vec());
        let headers = http::HeaderMap::new();
        let req = AuthnRequest {
            headers: &headers,
            peer_certificates: peer.as_deref(),
        };
        let user = authn.authenticate(&req).await.map_err(|e| e.0)?;
        tls.write_all(b"ok").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.ok();
        Ok::<_, String>(user)
    });
    let mut client = client;
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let client_side = async {
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    };
    let client_result = client_side.await;
    let server_result = server.await.unwrap();
    match (client_result, server_result) {
        (Ok(buf), Ok(user)) => {
            assert_eq!(buf, b"ok");
            Ok(user)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

#[tokio::test]
async fn admin_client_certificate_authenticates_over_tls() {
    let pki = ClusterPki::generate("demo").unwrap();
    let user = handshake(
        &pki,
        client_config(&pki, Some(pki.issue_admin_cert().unwrap())),
        "localhost",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(user.name, "kubernetes-admin");
    assert_eq!(user.groups, vec!["system:masters", "system:authenticated"]);
}

#[tokio::test]
async fn serving_certificate_covers_in_cluster_names_and_ips() {
    let pki = ClusterPki::generate("demo").unwrap();
    for name in ["127.0.0.1", "kubernetes.default.svc", "10.100.0.1"] {
        let user = handshake(&pki, client_config(&pki, None), name)
            .await
            .unwrap();
        assert_eq!(user, None, "anonymous TLS is allowed; a token may follow");
    }
    assert!(
        handshake(&pki, client_config(&pki, None), "example.com")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn certificate_from_another_cluster_is_refused_at_handshake() {
    let ours = ClusterPki::generate("a").unwrap();
    let theirs = ClusterPki::generate("b").unwrap();
    // The client trusts our server but presents a certificate signed by the other CA.
    let cfg = client_config(&ours, Some(theirs.issue_admin_cert().unwrap()));
    assert!(handshake(&ours, cfg, "localhost").await.is_err());
}

#[tokio::test]
async fn pki_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("skiff-auth-tls-{}", uuid::Uuid::new_v4()));
    let before = ClusterPki::load_or_generate(&dir, "demo").unwrap();
    let cert = before.issue_admin_cert().unwrap();
    let after = ClusterPki::load_or_generate(&dir, "demo").unwrap();
    // A kubeconfig issued before the restart still works against the reloaded PKI.
    let user = handshake(&after, client_config(&after, Some(cert)), "127.0.0.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "kubernetes-admin");
    std::fs::remove_dir_all(&dir).unwrap();
}
