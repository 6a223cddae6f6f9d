//! Audit: one `audit.k8s.io/v1` Event per request at the `Metadata` level (who, what, on which
//! object, with which answer), handed to an [`AuditSink`] when the response is ready. EKS ships
//! these to CloudWatch Logs when the cluster enables the `audit` log type; a cluster without a sink
//! pays nothing. Watches are recorded at `ResponseStarted` (their response never completes here).

use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::http::request_info::RequestInfo;

/// Where audit events go. `record` must not block (the request is answered right after).
pub trait AuditSink: Send + Sync + 'static {
    /// Whether events are wanted now (when not, none is built).
    fn enabled(&self) -> bool {
        true
    }
    fn record(&self, event: Value);
}

/// What the HTTP layer knows about a finished request.
pub struct Request<'a> {
    pub info: &'a RequestInfo,
    /// Path and query as received.
    pub uri: &'a str,
    pub user: Option<&'a UserInfo>,
    pub user_agent: Option<&'a str>,
    pub code: u16,
    pub received: jiff::Timestamp,
}

fn micros(t: jiff::Timestamp) -> String {
    let ms = t.as_microsecond();
    jiff::Timestamp::from_microsecond(ms)
        .map(|t| format!("{t:.6}"))
        .unwrap_or_default()
}

/// The `Metadata`-level audit event of one request.
pub fn event(r: &Request<'_>) -> Value {
    let info = r.info;
    let mut e = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": uuid::Uuid::new_v4().to_string(),
        "stage": if info.verb == "watch" { "ResponseStarted" } else { "ResponseComplete" },
        "requestURI": r.uri,
        "verb": info.verb,
        "responseStatus": {"metadata": {}, "code": r.code},
        "requestReceivedTimestamp": micros(r.received),
        "stageTimestamp": micros(jiff::Timestamp::now()),
    });
    e["user"] = match r.user {
        Some(u) => crate::auth_apis::user_info_json(u),
        None => json!({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
    };
    if let Some(ua) = r.user_agent {
        e["userAgent"] = json!(ua);
    }
    if info.is_resource {
        let mut o = json!({"resource": info.resource, "apiVersion": info.version});
        if !info.group.is_empty() {
            o["apiGroup"] = json!(info.group);
        }
        for (k, v) in [
            ("namespace", &info.namespace),
            ("name", &info.name),
            ("subresource", &info.subresource),
        ] {
            if !v.is_empty() {
                o[k] = json!(v);
            }
        }
        e["objectRef"] = o;
    }
    if r.code == 403 {
        e["annotations"] = json!({"authorization.k8s.io/decision": "forbid"});
    } else if r.user.is_some() && r.code != 401 {
        e["annotations"] = json!({"authorization.k8s.io/decision": "allow"});
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_who_what_and_the_answer() {
        let info = crate::http::request_info::parse(
            "DELETE",
            "/apis/apps/v1/namespaces/shop/deployments/web",
            false,
        );
        let user = UserInfo {
            name: "alice".into(),
            uid: String::new(),
            groups: vec!["dev".into()],
            extra: Default::default(),
        };
        let e = event(&Request {
            info: &info,
            uri: "/apis/apps/v1/namespaces/shop/deployments/web",
            user: Some(&user),
            user_agent: Some("kubectl/v1.32.0"),
            code: 200,
            received: jiff::Timestamp::now(),
        });
        assert_eq!(e["verb"], "delete");
        assert_eq!(e["stage"], "ResponseComplete");
        assert_eq!(e["user"]["username"], "alice");
        assert_eq!(
            e["objectRef"],
            json!({"resource": "deployments", "apiGroup": "apps", "apiVersion": "v1", "namespace": "shop", "name": "web"})
        );
        assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "allow");
        let anon = event(&Request {
            info: &info,
            uri: "/x",
            user: None,
            user_agent: None,
            code: 401,
            received: jiff::Timestamp::now(),
        });
        assert_eq!(anon["user"]["username"], "system:anonymous");
        assert!(anon.get("annotations").is_none());
    }
}
