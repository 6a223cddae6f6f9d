//! ServiceAccount tokens: bound JWTs (TokenRequest, projected volumes, IRSA) and legacy Secret-based
//! tokens, both RS256 with the cluster's `sa.key` (kube-apiserver `serviceaccount.JWTTokenGenerator`
//! and `JWTTokenAuthenticator`).
//!
//! A signature alone is not enough: a token stops working when its ServiceAccount (or the pod or
//! secret it is bound to) is deleted or recreated with another uid, so verification reads the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use sha2::Digest;
use skiff_store::Store;

use super::{
    Authenticator, AuthnError, AuthnRequest, UserInfo, bearer_token, get_object, object_key,
};
use crate::pki::{ClusterPki, PkiError};

/// `iss` of tokens minted by the legacy token controller into Secrets.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Group of every ServiceAccount (`serviceaccount.AllServiceAccountsGroup`).
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Clock skew tolerated on `nbf`/`iat` (upstream uses the same minute).
const LEEWAY_SECS: i64 = 60;
/// Upstream's answer for tokens whose account, pod or secret is gone or was replaced.
const INVALIDATED: &str = "service account token has been invalidated";

/// `system:serviceaccount:<ns>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Splits `system:serviceaccount:<ns>:<name>` into `(ns, name)`.
pub fn split_service_account_username(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// The groups a ServiceAccount user carries.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS.to_string(),
        format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
        super::ALL_AUTHENTICATED.to_string(),
    ]
}

/// An object a bound token is tied to (TokenRequest `spec.boundObjectRef`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundObject {
    /// `Pod` or `Secret`.
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// What a bound token says.
#[derive(Clone, Debug)]
pub struct BoundTokenSpec {
    pub namespace: String,
    pub service_account: String,
    pub service_account_uid: String,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub bound: Option<BoundObject>,
}

/// Signs and checks the signature of ServiceAccount tokens; no store access.
#[doc(alias = "JWTTokenGenerator")]
pub struct TokenSigner {
    issuer: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: Value,
}

fn jwt_err(e: impl std::fmt::Display) -> AuthnError {
    AuthnError(e.to_string())
}

impl TokenSigner {
    /// `issuer` is the cluster's issuer URL (`https://oidc.eks.<region>.amazonaws.com/id/<ID>` on
    /// EKS, `https://kubernetes.default.svc` by default upstream).
    pub fn new(pki: &ClusterPki, issuer: &str) -> Result<Self, PkiError> {
        let kp = rcgen::KeyPair::from_pem(&pki.sa_key_pem)
            .map_err(|e| PkiError::Invalid(e.to_string()))?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&kp);
        // Upstream keyIDFromPublicKey: base64url(SHA-256(DER SubjectPublicKeyInfo)).
        let kid =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&spki));
        let encoding = EncodingKey::from_rsa_pem(pki.sa_key_pem.as_bytes())
            .map_err(|e| PkiError::Invalid(format!("sa.key: {e}")))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| PkiError::Invalid(format!("sa.key: {e}")))?;
        jwk.common.key_id = Some(kid.clone());
        let decoding =
            DecodingKey::from_jwk(&jwk).map_err(|e| PkiError::Invalid(format!("sa.key: {e}")))?;
        let mut jwk = serde_json::to_value(&jwk).map_err(|e| PkiError::Invalid(e.to_string()))?;
        // The fields a JWKS consumer (AWS STS, go-oidc) expects, in upstream's shape.
        if let Some(o) = jwk.as_object_mut() {
            o.insert("use".into(), json!("sig"));
            o.insert("alg".into(), json!("RS256"));
        }
        Ok(Self {
            issuer: issuer.to_string(),
            encoding,
            decoding,
            kid,
            jwk,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `kid` of every token this signer issues.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// `{"keys":[...]}` for `/openid/v1/jwks` and the EKS OIDC endpoint.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk.clone()] })
    }

    fn sign(&self, claims: &Value) -> Result<String, AuthnError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(jwt_err)
    }

    /// A bound token issued at `now` (unix seconds). Returns the token and its `exp`.
    pub fn issue_bound(
        &self,
        spec: &BoundTokenSpec,
        now: i64,
    ) -> Result<(String, i64), AuthnError> {
        let exp = now + spec.expiration_seconds;
        let mut k8s = json!({
            "namespace": spec.namespace,
            "serviceaccount": { "name": spec.service_account, "uid": spec.service_account_uid },
        });
        if let Some(b) = &spec.bound {
            let field = if b.kind == "Pod" { "pod" } else { "secret" };
            k8s[field] = json!({ "name": b.name, "uid": b.uid });
        }
        let claims = json!({
            "aud": spec.audiences,
            "exp": exp,
            "iat": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": service_account_username(&spec.namespace, &spec.service_account),
        });
        Ok((self.sign(&claims)?, exp))
    }

    /// A legacy, non-expiring token for a `kubernetes.io/service-account-token` Secret.
    pub fn issue_legacy(
        &self,
        namespace: &str,
        service_account: &str,
        service_account_uid: &str,
        secret_name: &str,
    ) -> Result<String, AuthnError> {
        self.sign(&json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": service_account,
            "kubernetes.io/serviceaccount/service-account.uid": service_account_uid,
            "sub": service_account_username(namespace, service_account),
        }))
    }

    /// Checks the signature and returns the claims. `Ok(None)`: not a JWT, or not from an issuer we
    /// sign for (another authenticator's token).
    pub fn verify_signature(&self, token: &str) -> Result<Option<Value>, AuthnError> {
        if token.split('.').count() != 3 {
            return Ok(None);
        }
        let Ok(unverified) = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token) else {
            return Ok(None);
        };
        let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
        if iss != self.issuer && iss != LEGACY_ISSUER {
            return Ok(None);
        }
        let mut v = Validation::new(Algorithm::RS256);
        // Time and audience are checked by the caller against its own clock and audiences.
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &v)
            .map_err(|_| AuthnError("invalid bearer token".into()))?;
        Ok(Some(data.claims))
    }
}

/// The OIDC discovery document for `issuer`, with the JWKS at `<issuer>/openid/v1/jwks`
/// (kube-apiserver's default).
pub fn openid_configuration(issuer: &str) -> Value {
    openid_configuration_with_jwks_uri(
        issuer,
        &format!("{}/openid/v1/jwks", issuer.trim_end_matches('/')),
    )
}

/// Same, with an explicit JWKS location (EKS serves it at `<issuer>/keys`).
pub fn openid_configuration_with_jwks_uri(issuer: &str, jwks_uri: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// Authenticates ServiceAccount bearer tokens against the signer and the cluster's store.
#[doc(alias = "JWTTokenAuthenticator")]
pub struct ServiceAccountTokenAuthenticator {
    signer: Arc<TokenSigner>,
    store: Arc<dyn Store>,
    cluster_id: String,
    api_audiences: Vec<String>,
}

/// A verified token: who it is and which of the requested audiences it matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user: UserInfo,
    pub audiences: Vec<String>,
}

fn claim_str<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn audiences_of(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl ServiceAccountTokenAuthenticator {
    /// `api_audiences`: what this API server accepts (`--api-audiences`; defaults to the issuer).
    pub fn new(
        signer: Arc<TokenSigner>,
        store: Arc<dyn Store>,
        cluster_id: &str,
        api_audiences: Vec<String>,
    ) -> Self {
        Self {
            signer,
            store,
            cluster_id: cluster_id.to_string(),
            api_audiences,
        }
    }

    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    pub fn signer(&self) -> &Arc<TokenSigner> {
        &self.signer
    }

    /// Verifies `token` for `audiences` (empty = the API's audiences) at `now` (unix seconds).
    /// `Ok(None)` when it is not a ServiceAccount token.
    pub async fn verify(
        &self,
        token: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<Option<VerifiedToken>, AuthnError> {
        let Some(claims) = self.signer.verify_signature(token)? else {
            return Ok(None);
        };
        let wanted = if audiences.is_empty() {
            &self.api_audiences[..]
        } else {
            audiences
        };
        if claim_str(&claims, "/iss") == LEGACY_ISSUER {
            return self.verify_legacy(token, &claims, wanted).await.map(Some);
        }

        let exp = claims.get("exp").and_then(Value::as_i64);
        match exp {
            Some(exp) if exp > now => {}
            Some(_) => return Err(AuthnError("Token has expired.".into())),
            None => return Err(AuthnError("Token could not be validated.".into())),
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
            && nbf > now + LEEWAY_SECS
        {
            return Err(AuthnError("Token could not be validated.".into()));
        }
        let token_auds = audiences_of(&claims);
        let matched: Vec<String> = wanted
            .iter()
            .filter(|a| token_auds.contains(a))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(AuthnError("Token audiences are invalid".into()));
        }

        let ns = claim_str(&claims, "/kubernetes.io/namespace");
        let sa_name = claim_str(&claims, "/kubernetes.io/serviceaccount/name");
        let sa_uid = claim_str(&claims, "/kubernetes.io/serviceaccount/uid");
        if ns.is_empty() || sa_name.is_empty() {
            return Err(AuthnError("Token could not be validated.".into()));
        }
        self.check_live(ns, "serviceaccounts", sa_name, sa_uid)
            .await?;
        let mut extra = BTreeMap::new();
        for (field, resource, kind) in [("pod", "pods", "pod"), ("secret", "secrets", "secret")] {
            let name = claim_str(&claims, &format!("/kubernetes.io/{field}/name"));
            if name.is_empty() {
                continue;
            }
            let uid = claim_str(&claims, &format!("/kubernetes.io/{field}/uid"));
            self.check_live(ns, resource, name, uid).await?;
            if kind == "pod" {
                extra.insert(
                    "authentication.kubernetes.io/pod-name".to_string(),
                    vec![name.to_string()],
                );
                extra.insert(
                    "authentication.kubernetes.io/pod-uid".to_string(),
                    vec![uid.to_string()],
                );
            }
        }
        let jti = claim_str(&claims, "/jti");
        if !jti.is_empty() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok(Some(VerifiedToken {
            user: UserInfo {
                name: service_account_username(ns, sa_name),
                uid: sa_uid.to_string(),
                groups: service_account_groups(ns),
                extra,
            },
            audiences: matched,
        }))
    }

    /// Legacy tokens carry no audience: they are valid for the API's own audiences only, and only
    /// while their Secret exists and still holds exactly this token.
    async fn verify_legacy(
        &self,
        token: &str,
        claims: &Value,
        wanted: &[String],
    ) -> Result<VerifiedToken, AuthnError> {
        let matched: Vec<String> = wanted
            .iter()
            .filter(|a| self.api_audiences.contains(a))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(AuthnError("Token audiences are invalid".into()));
        }
        let ns = claim_str(claims, "/kubernetes.io~1serviceaccount~1namespace");
        let secret = claim_str(claims, "/kubernetes.io~1serviceaccount~1secret.name");
        let sa_name = claim_str(
            claims,
            "/kubernetes.io~1serviceaccount~1service-account.name",
        );
        let sa_uid = claim_str(
            claims,
            "/kubernetes.io~1serviceaccount~1service-account.uid",
        );
        if ns.is_empty() || secret.is_empty() || sa_name.is_empty() {
            return Err(AuthnError("Token could not be validated.".into()));
        }
        let key = object_key(&self.cluster_id, "", "secrets", Some(ns), secret);
        let Some((obj, _)) = get_object(&*self.store, &key).await.map_err(AuthnError)? else {
            return Err(AuthnError(INVALIDATED.into()));
        };
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(AuthnError(INVALIDATED.into()));
        }
        let stored = obj
            .pointer("/data/token")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        if stored.as_deref() != Some(token.as_bytes()) {
            return Err(AuthnError(INVALIDATED.into()));
        }
        self.check_live(ns, "serviceaccounts", sa_name, sa_uid)
            .await?;
        Ok(VerifiedToken {
            user: UserInfo {
                name: service_account_username(ns, sa_name),
                uid: sa_uid.to_string(),
                groups: service_account_groups(ns),
                extra: BTreeMap::new(),
            },
            audiences: matched,
        })
    }

    /// The object exists, is not being deleted, and (when the token names one) has the same uid.
    async fn check_live(
        &self,
        ns: &str,
        resource: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), AuthnError> {
        let key = object_key(&self.cluster_id, "", resource, Some(ns), name);
        let Some((obj, _)) = get_object(&*self.store, &key).await.map_err(AuthnError)? else {
            return Err(AuthnError(INVALIDATED.into()));
        };
        let live_uid = claim_str(&obj, "/metadata/uid");
        if (!uid.is_empty() && live_uid != uid)
            || obj.pointer("/metadata/deletionTimestamp").is_some()
        {
            return Err(AuthnError(INVALIDATED.into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Authenticator for ServiceAccountTokenAuthenticator {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
        let Some(token) = bearer_token(req.headers) else {
            return Ok(None);
        };
        let now = jiff::Timestamp::now().as_second();
        Ok(self.verify(token, &[], now).await?.map(|v| v.user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_round_trips() {
        let u = service_account_username("kube-system", "default");
        assert_eq!(u, "system:serviceaccount:kube-system:default");
        assert_eq!(
            split_service_account_username(&u),
            Some(("kube-system", "default"))
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount:x"),
            None
        );
        assert_eq!(split_service_account_username("jane"), None);
    }

    #[test]
    fn jwks_and_discovery_document() {
        let pki = ClusterPki::generate("a").unwrap();
        let s = TokenSigner::new(&pki, "https://issuer.example").unwrap();
        let jwks = s.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["e"], "AQAB");
        assert_eq!(key["kid"], s.key_id());
        assert_eq!(s.key_id().len(), 43); // 32 bytes, base64url without padding
        // A verifier that only has the JWKS (as AWS STS does) accepts our tokens.
        let jwk: Jwk = serde_json::from_value(key.clone()).unwrap();
        let dk = DecodingKey::from_jwk(&jwk).unwrap();
        let (token, _) = s
            .issue_bound(
                &BoundTokenSpec {
                    namespace: "default".into(),
                    service_account: "app".into(),
                    service_account_uid: "u1".into(),
                    audiences: vec!["sts.amazonaws.com".into()],
                    expiration_seconds: 3600,
                    bound: None,
                },
                jiff::Timestamp::now().as_second(),
            )
            .unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["sts.amazonaws.com"]);
        v.set_issuer(&["https://issuer.example"]);
        let data = jsonwebtoken::decode::<Value>(&token, &dk, &v).unwrap();
        assert_eq!(data.claims["sub"], "system:serviceaccount:default:app");
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
            Some(s.key_id())
        );

        let doc = openid_configuration("https://issuer.example/");
        assert_eq!(doc["jwks_uri"], "https://issuer.example/openid/v1/jwks");
        assert_eq!(doc["id_token_signing_alg_values_supported"][0], "RS256");
    }

    #[test]
    fn foreign_tokens_are_not_ours() {
        let pki = ClusterPki::generate("a").unwrap();
        let s = TokenSigner::new(&pki, "https://issuer.example").unwrap();
        assert_eq!(s.verify_signature("k8s-aws-v1.abc").unwrap(), None);
        assert_eq!(s.verify_signature("abcdef.0123456789abcdef").unwrap(), None);
        // Same issuer, other key: an error, not "not mine".
        let other = TokenSigner::new(
            &ClusterPki::generate("b").unwrap(),
            "https://issuer.example",
        )
        .unwrap();
        let t = other.issue_legacy("default", "x", "u", "x-token").unwrap();
        assert!(s.verify_signature(&t).is_err());
    }
}
