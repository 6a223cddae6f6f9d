//! Bootstrap tokens (`Bearer <id>.<secret>`, kubeadm join): Secrets named `bootstrap-token-<id>` of
//! type `bootstrap.kubernetes.io/token` in `kube-system` (apiserver `bootstrap.TokenAuthenticator`).

use std::sync::Arc;

use base64::Engine;
use serde_json::Value;
use skiff_store::Store;

use super::{
    Authenticator, AuthnError, AuthnRequest, UserInfo, bearer_token, get_object, object_key,
};

pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Every bootstrap token user is in this group; extra groups must extend it.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

/// `[a-z0-9]{6}.[a-z0-9]{16}` split into `(id, secret)`.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// Equal-length comparison that does not stop at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub struct BootstrapTokenAuthenticator {
    store: Arc<dyn Store>,
    cluster_id: String,
}

fn data_field(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

impl BootstrapTokenAuthenticator {
    pub fn new(store: Arc<dyn Store>, cluster_id: &str) -> Self {
        Self {
            store,
            cluster_id: cluster_id.to_string(),
        }
    }

    /// Authenticates `token` at `now`. `Ok(None)` when it is not shaped like a bootstrap token.
    pub async fn verify(
        &self,
        token: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<UserInfo>, AuthnError> {
        let Some((id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        // Upstream logs the precise reason and answers the client with a generic failure.
        let invalid = || AuthnError("invalid bootstrap token".into());
        let key = object_key(
            &self.cluster_id,
            "",
            "secrets",
            Some("kube-system"),
            &format!("bootstrap-token-{id}"),
        );
        let Some((obj, _)) = get_object(&*self.store, &key).await.map_err(AuthnError)? else {
            return Err(invalid());
        };
        if obj.get("type").and_then(Value::as_str) != Some(SECRET_TYPE)
            || obj.pointer("/metadata/deletionTimestamp").is_some()
        {
            return Err(invalid());
        }
        if data_field(&obj, "token-id").as_deref() != Some(id) {
            return Err(invalid());
        }
        let stored = data_field(&obj, "token-secret").unwrap_or_default();
        if !constant_time_eq(stored.as_bytes(), secret.as_bytes()) {
            return Err(invalid());
        }
        if let Some(exp) = data_field(&obj, "expiration") {
            match exp.parse::<jiff::Timestamp>() {
                Ok(t) if t > now => {}
                _ => return Err(invalid()),
            }
        }
        if data_field(&obj, "usage-bootstrap-authentication").as_deref() != Some("true") {
            return Err(invalid());
        }
        let mut groups = vec![BOOTSTRAPPERS_GROUP.to_string()];
        if let Some(extra) = data_field(&obj, "auth-extra-groups") {
            for g in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                // Only subgroups of system:bootstrappers may be granted (upstream validation).
                if !g.starts_with("system:bootstrappers:") {
                    return Err(invalid());
                }
                if !groups.iter().any(|x| x == g) {
                    groups.push(g.to_string());
                }
            }
        }
        groups.push(super::ALL_AUTHENTICATED.to_string());
        Ok(Some(UserInfo {
            name: format!("system:bootstrap:{id}"),
            uid: String::new(),
            groups,
            extra: Default::default(),
        }))
    }
}

#[async_trait::async_trait]
impl Authenticator for BootstrapTokenAuthenticator {
    async fn authenticate(&self, req: &AuthnRequest<'_>) -> Result<Option<UserInfo>, AuthnError> {
        match bearer_token(req.headers) {
            Some(token) => self.verify(token, jiff::Timestamp::now()).await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        assert_eq!(
            parse_token("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse_token("ABCDEF.0123456789abcdef"), None);
        assert_eq!(parse_token("abcdef.0123456789abcde"), None);
        assert_eq!(parse_token("a.b.c"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
