//! TLS serving: ALPN h2 and http/1.1, client certificates optional but verified, the verified
//! chain handed to authenticators, anonymous requests, 401 on a bad credential and 403 with RBAC's
//! wording when no authorizer allows.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use serde_json::Value;
use skiff_apiserver::authn::{Authenticator, AuthnError, AuthnRequest, UserInfo};
use skiff_apiserver::authz::{Attributes, Authorizer, Decision};
use skiff_apiserver::server::TlsConfig;

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    /// A client certificate from a CA the server does not trust.
    rogue_cert: String,
    rogue_key: String,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    (p, key, cert.pem())
}

fn leaf(issuer: &Issuer<'_, KeyPair>, sans: Vec<String>, cn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let (ca_params, ca_key, ca_pem) = ca("skiff-test-ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let (server_cert, server_key) = leaf(
        &issuer,
        vec!["127.0.0.1".into(), "localhost".into()],
        "apiserver",
    );
    let (client_cert, client_key) = leaf(&issuer, vec![], "admin");
    let (rogue_params, rogue_ca_key, _) = ca("rogue");
    let rogue_issuer = Issuer::new(rogue_params, rogue_ca_key);
    let (rogue_cert, rogue_key) = leaf(&rogue_issuer, vec![], "admin");
    Pki {
        ca_pem,
        server_cert,
        server_key,
        client_cert,
        client_key,
        rogue_cert,
        rogue_key,
    }
}

/// Names the user after the client certificate's CN; a `Bearer bad` header is a bad credential.
struct CertCn;

#[async_trait::async_trait]
impl Authenticator for CertCn {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
        if req
            .headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer bad")
        {
            return Err(AuthnError("invalid bearer token".into()));
        }
        let Some(chain) = req.peer_certificates else {
            return Ok(None);
        };
        let (_, cert) = x509_parser::parse_x509_certificate(chain[0].as_ref())
            .map_err(|e| AuthnError(e.to_string()))?;
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Some(UserInfo {
            name: cn,
            ..Default::default()
        }))
    }
}

/// Allows `admin` everything and anonymous users `/healthz`.
struct AdminOnly;

#[async_trait::async_trait]
impl Authorizer for AdminOnly {
    async fn authorize(&self, a: &Attributes) -> Decision {
        let admin =
            a.user.name == "admin" && a.user.groups.iter().any(|g| g == "system:authenticated");
        if admin || (!a.resource_request && a.path == "/healthz") {
            Decision::Allow
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

async fn tls_get(
    addr: std::net::SocketAddr,
    pki: &Pki,
    client: Option<(&str, &str)>,
    alpn: &[u8],
    path: &str,
) -> Result<(u16, Value, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut cfg = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    assert_eq!(negotiated.as_deref(), Some(alpn));
    let req = Request::builder()
        .uri(format!("https://127.0.0.1{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = if alpn == b"h2" {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    };
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        String::from_utf8_lossy(&bytes).to_string(),
    ))
}

#[tokio::test]
async fn tls_client_certificates_authn_and_rbac() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = pki();
    let mut cfg = support::config();
    cfg.tls = Some(TlsConfig {
        serving_cert_pem: pki.server_cert.clone(),
        serving_key_pem: pki.server_key.clone(),
        client_ca_pem: pki.ca_pem.clone(),
    });
    cfg.authenticators = vec![Arc::new(CertCn)];
    cfg.authorizers = vec![Arc::new(AdminOnly)];
    let s = support::server_with(cfg).await;
    let addr = s.api.local_addr;
    let admin = Some((pki.client_cert.as_str(), pki.client_key.as_str()));

    // HTTP/2 and HTTP/1.1, with a verified client certificate.
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let (status, body, _) = tls_get(addr, &pki, admin, alpn, "/api/v1/namespaces")
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["kind"], "NamespaceList");
    }
    // No certificate: anonymous, and RBAC decides.
    let (status, body, _) = tls_get(addr, &pki, None, b"h2", "/api/v1/namespaces")
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    let (status, _, text) = tls_get(addr, &pki, None, b"http/1.1", "/healthz")
        .await
        .unwrap();
    assert_eq!((status, text.as_str()), (200, "ok"));
    let (status, body, _) = tls_get(addr, &pki, None, b"h2", "/version").await.unwrap();
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/version\""
    );
    // A certificate from another CA is refused in the handshake.
    let rogue = tls_get(
        addr,
        &pki,
        Some((pki.rogue_cert.as_str(), pki.rogue_key.as_str())),
        b"h2",
        "/healthz",
    )
    .await;
    assert!(rogue.is_err(), "{rogue:?}");
    s.api.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_401_and_namespaced_denials_name_the_namespace() {
    let mut cfg = support::config();
    cfg.authenticators = vec![Arc::new(CertCn)];
    cfg.authorizers = vec![Arc::new(AdminOnly)];
    let s = support::server_with(cfg).await;
    let r = s
        .req(
            "GET",
            "/api/v1/namespaces",
            None,
            None,
            &[("authorization", "Bearer bad")],
        )
        .await;
    assert_eq!(r.status.as_u16(), 401);
    assert_eq!(r.body["reason"], "Unauthorized");
    let r = s.get("/api/v1/namespaces/default/configmaps/x").await;
    assert_eq!(r.status.as_u16(), 403);
    assert_eq!(
        r.body["message"],
        "configmaps \"x\" is forbidden: User \"system:anonymous\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    s.api.shutdown().await;
}
