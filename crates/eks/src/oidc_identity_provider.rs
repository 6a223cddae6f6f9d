//! OIDC identity provider authentication: ID tokens from the issuer named by the cluster's
//! `AssociateIdentityProviderConfig` log users in to the cluster's API, as EKS configures
//! kube-apiserver's `--oidc-*` flags from that config.
//!
//! The rules are kube-apiserver's OIDC authenticator's: the token's `iss` must be the config's
//! `issuerUrl`, its RS256 signature must verify against the issuer's JWKS, `aud` must contain the
//! `clientId`, `exp`/`nbf` must hold, every `requiredClaims` entry must match; the username comes
//! from `usernameClaim` (default `sub`), prefixed with `usernamePrefix` (unset: `<issuer>#` unless the
//! claim is `email`; `-`: no prefix), and groups from `groupsClaim` with `groupsPrefix`.
//!
//! Keys: an issuer that is one of Skiff's own (a cluster's service-account issuer, published into
//! the store for STS) is verified locally; any other is fetched over HTTPS from its discovery
//! document, trusting the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` add others, so a local
//! Dex or Keycloak with its own CA works), and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use skiff_apiserver::authn::{Authenticator, AuthnError, AuthnRequest, UserInfo, bearer_token};
use skiff_store::Store;

/// How long fetched keys are trusted before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(600);
/// An unknown `kid` refetches the keys (rotation), at most this often per issuer.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// Discovery and JWKS documents larger than this are refused.
const MAX_DOCUMENT: usize = 1 << 20;
/// Each HTTPS fetch gives up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The authenticator of one cluster.
pub struct IdentityProviderAuthenticator {
    store: Arc<dyn Store>,
    account: String,
    region: String,
    cluster: String,
    keys: Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>,
}

impl IdentityProviderAuthenticator {
    pub fn new(store: Arc<dyn Store>, account: &str, region: &str, cluster: &str) -> Self {
        Self {
            store,
            account: account.to_string(),
            region: region.to_string(),
            cluster: cluster.to_string(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The issuer's keys: Skiff's own issuers from the store, others from the network (cached).
    async fn keys_of(&self, issuer: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, AuthnError> {
        let local = skiff_aws::resources::get::<JwkSet>(
            &*self.store,
            &skiff_aws::sts::web_identity::jwks_key(issuer),
        )
        .await
        .map_err(|e| AuthnError(format!("oidc: reading issuer keys: {}", e.message)))?;
        if let Some((set, _)) = local {
            return Ok(Arc::new(set));
        }
        let cached = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(issuer)
            .cloned();
        if let Some((at, set)) = &cached {
            let knows_kid = kid.is_none_or(|k| set.find(k).is_some());
            if at.elapsed() < KEYS_TTL && (knows_kid || at.elapsed() < REFETCH_AFTER) {
                return Ok(set.clone());
            }
        }
        let set = Arc::new(fetch_jwks(issuer, &system_roots()).await.map_err(|e| {
            AuthnError(format!(
                "oidc: verifying token: fetching keys of {issuer}: {e}"
            ))
        })?);
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(issuer.to_string(), (Instant::now(), set.clone()));
        Ok(set)
    }
}

#[async_trait::async_trait]
impl Authenticator for IdentityProviderAuthenticator {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
        let Some(token) = bearer_token(req.headers) else {
            return Ok(None);
        };
        let Some(claims) = unverified_claims(token) else {
            return Ok(None);
        };
        let Some(issuer) = claims.get("iss").and_then(Value::as_str) else {
            return Ok(None);
        };
        let configs = skiff_aws::eks::identity_providers::list_identity_provider_records(
            &*self.store,
            &self.account,
            &self.region,
            &self.cluster,
        )
        .await
        .map_err(|e| {
            AuthnError(format!(
                "oidc: reading the identity provider config: {}",
                e.message
            ))
        })?;
        // Not this cluster's identity provider: another authenticator may know the token.
        let Some(config) = configs.iter().find(|c| {
            c["issuerUrl"].as_str().map(|u| u.trim_end_matches('/'))
                == Some(issuer.trim_end_matches('/'))
                && c["status"] == "ACTIVE"
        }) else {
            return Ok(None);
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthnError(format!("oidc: malformed token header: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthnError(format!(
                "oidc: verify token: unsupported signing algorithm {:?} (RS256 expected)",
                header.alg
            )));
        }
        let keys = self.keys_of(issuer, header.kid.as_deref()).await?;
        let client_id = config["clientId"].as_str().unwrap_or_default();
        let verified = verify(token, &keys, header.kid.as_deref(), client_id)?;
        user_from_claims(config, issuer, &verified).map(Some)
    }
}

/// The payload of a compact JWS, unverified (to find its issuer). `None`: not a JWT.
fn unverified_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// Signature, `aud`, `exp` and `nbf`; the verified claims.
fn verify(
    token: &str,
    keys: &JwkSet,
    kid: Option<&str>,
    client_id: &str,
) -> Result<Value, AuthnError> {
    let candidates: Vec<_> = match kid {
        Some(k) => keys.find(k).into_iter().collect(),
        None => keys.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(AuthnError(
            "oidc: verify token: no key of the issuer matches the token's key id".into(),
        ));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[client_id]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    let mut last = String::from("signature verification failed");
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Value>(token, &key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => last = e.to_string(),
        }
    }
    Err(AuthnError(format!("oidc: verify token: {last}")))
}

/// kube-apiserver's claim mapping.
fn user_from_claims(config: &Value, issuer: &str, claims: &Value) -> Result<UserInfo, AuthnError> {
    if let Some(required) = config["requiredClaims"].as_object() {
        for (claim, want) in required {
            if claims.get(claim).and_then(Value::as_str) != want.as_str() {
                return Err(AuthnError(format!(
                    "oidc: required claim {claim} not present or not {want} in ID token"
                )));
            }
        }
    }
    let username_claim = config["usernameClaim"].as_str().unwrap_or("sub");
    let username = claims
        .get(username_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AuthnError(format!(
                "oidc: parse username claims {username_claim:?}: claim not present"
            ))
        })?;
    if username_claim == "email"
        && claims.get("email_verified").is_some()
        && claims["email_verified"] != Value::Bool(true)
    {
        return Err(AuthnError(format!("oidc: email not verified: {username}")));
    }
    let name = match config["usernamePrefix"].as_str() {
        Some("-") => username.to_string(),
        Some(prefix) => format!("{prefix}{username}"),
        None if username_claim == "email" => username.to_string(),
        None => format!("{issuer}#{username}"),
    };
    let mut groups = Vec::new();
    if let Some(claim) = config["groupsClaim"].as_str() {
        let prefix = config["groupsPrefix"].as_str().unwrap_or("");
        match claims.get(claim) {
            Some(Value::String(g)) => groups.push(format!("{prefix}{g}")),
            Some(Value::Array(list)) => groups.extend(
                list.iter()
                    .filter_map(Value::as_str)
                    .map(|g| format!("{prefix}{g}")),
            ),
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(AuthnError(format!(
                    "oidc: parse groups claim {claim:?}: not a string or an array of strings"
                )));
            }
        }
    }
    Ok(UserInfo {
        name,
        uid: String::new(),
        groups,
        extra: Default::default(),
    })
}

/// The system's trusted roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    roots
}

/// The issuer's JWKS, through its discovery document.
async fn fetch_jwks(issuer: &str, roots: &rustls::RootCertStore) -> Result<JwkSet, String> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery = https_get_json(&discovery_url, roots).await?;
    if discovery["issuer"]
        .as_str()
        .map(|s| s.trim_end_matches('/'))
        != Some(issuer.trim_end_matches('/'))
    {
        return Err(format!(
            "the discovery document names issuer {}, not {issuer}",
            discovery["issuer"]
        ));
    }
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or("the discovery document has no jwks_uri")?;
    let jwks = https_get_json(jwks_uri, roots).await?;
    serde_json::from_value(jwks).map_err(|e| format!("not a JWK Set: {e}"))
}

/// GET an `https://` URL and parse its JSON body (TLS with the system's roots).
async fn https_get_json(url: &str, roots: &rustls::RootCertStore) -> Result<Value, String> {
    tokio::time::timeout(FETCH_TIMEOUT, https_get_json_inner(url, roots.clone()))
        .await
        .map_err(|_| format!("GET {url}: timed out after {FETCH_TIMEOUT:?}"))?
}

async fn https_get_json_inner(url: &str, roots: rustls::RootCertStore) -> Result<Value, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!("{url}: only https is supported"));
    }
    let host = parsed
        .host_str()
        .ok_or(format!("{url}: no host"))?
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let tls_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server_name =
        rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("{host}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS to {host}:{port}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP to {host}:{port}: {e}"))?;
    let conn = tokio::spawn(conn);
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let request = http::Request::get(path)
        .header(http::header::HOST, parsed.authority())
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        conn.abort();
        return Err(format!("GET {url}: {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_DOCUMENT)
        .collect()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
        .to_bytes();
    conn.abort();
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: Value) -> Value {
        let mut c =
            json!({"issuerUrl": "https://idp.example", "clientId": "kube", "status": "ACTIVE"});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        c
    }

    #[test]
    fn usernames_and_groups_map_like_kube_apiserver() {
        let claims = json!({"sub": "u-1", "email": "ann@example.com", "email_verified": true,
            "groups": ["dev", "ops"], "hd": "example.com"});
        let u = user_from_claims(&config(json!({})), "https://idp.example", &claims).unwrap();
        assert_eq!(u.name, "https://idp.example#u-1");
        assert!(u.groups.is_empty());
        let c = config(
            json!({"usernameClaim": "email", "groupsClaim": "groups", "groupsPrefix": "oidc:"}),
        );
        let u = user_from_claims(&c, "https://idp.example", &claims).unwrap();
        assert_eq!(u.name, "ann@example.com");
        assert_eq!(u.groups, vec!["oidc:dev", "oidc:ops"]);
        let c = config(json!({"usernamePrefix": "-"}));
        assert_eq!(user_from_claims(&c, "x", &claims).unwrap().name, "u-1");
        let c = config(json!({"usernamePrefix": "corp:"}));
        assert_eq!(user_from_claims(&c, "x", &claims).unwrap().name, "corp:u-1");
    }

    #[test]
    fn required_claims_unverified_email_and_bad_groups_are_refused() {
        let claims =
            json!({"sub": "u", "email": "e@x", "email_verified": false, "groups": 3, "hd": "x"});
        let c = config(json!({"requiredClaims": {"hd": "example.com"}}));
        assert!(
            user_from_claims(&c, "i", &claims)
                .unwrap_err()
                .0
                .contains("required claim hd")
        );
        let c = config(json!({"usernameClaim": "email"}));
        assert!(
            user_from_claims(&c, "i", &claims)
                .unwrap_err()
                .0
                .contains("email not verified")
        );
        let c = config(json!({"groupsClaim": "groups"}));
        assert!(
            user_from_claims(&c, "i", &claims)
                .unwrap_err()
                .0
                .contains("groups claim")
        );
        let c = config(json!({"usernameClaim": "name"}));
        assert!(
            user_from_claims(&c, "i", &claims)
                .unwrap_err()
                .0
                .contains("claim not present")
        );
    }

    #[test]
    fn only_jwts_are_looked_at() {
        assert!(unverified_claims("k8s-aws-v1.abc").is_none());
        assert!(unverified_claims("a.b").is_none());
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        assert_eq!(
            unverified_claims(&format!("h.{payload}.s")).unwrap()["iss"],
            "x"
        );
    }

    /// A tiny HTTPS issuer on loopback with its own CA: discovery, then JWKS, over real TLS.
    #[tokio::test]
    async fn keys_are_fetched_over_https_from_the_discovery_document() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer_ca = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer_ca)
            .unwrap();
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("https://127.0.0.1:{port}/realm");
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}).to_string();
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
            "e": "AQAB"}]}).to_string();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let (discovery, jwks) = (discovery.clone(), jwks.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let body = match req.uri().path() {
                                "/realm/.well-known/openid-configuration" => discovery.clone(),
                                "/realm/keys" => jwks.clone(),
                                _ => String::new(),
                            };
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    http::Response::builder()
                                        .status(if body.is_empty() { 404 } else { 200 })
                                        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let set = fetch_jwks(&issuer, &roots).await.unwrap();
        assert!(set.find("k1").is_some());
        // Without the issuer's CA the fetch fails on TLS, and says so.
        let e = fetch_jwks(&issuer, &rustls::RootCertStore::empty())
            .await
            .unwrap_err();
        assert!(e.contains("TLS"), "{e}");
        // A discovery document naming another issuer is refused.
        let e = fetch_jwks(&format!("https://127.0.0.1:{port}/realm/"), &roots).await;
        assert!(e.is_ok(), "a trailing slash is the same issuer: {e:?}");
        let e = fetch_jwks(&format!("https://127.0.0.1:{port}/other"), &roots)
            .await
            .unwrap_err();
        assert!(e.contains("404"), "{e}");
    }
}
