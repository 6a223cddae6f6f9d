//! What a request is about, from its method, path and query (apiserver `RequestInfoFactory`).

/// The parsed request: a resource request (`/api/v1/namespaces/a/pods/b/status`) or a
/// non-resource path (`/healthz`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource: bool,
    /// `get list watch create update patch delete deletecollection`, or the lower-case method for
    /// non-resource requests.
    pub verb: String,
    /// `api` or `apis`.
    pub prefix: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub path: String,
}

/// Subresources of a namespace that are not namespaced resources (`/namespaces/x/status`).
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Parses `path` (already percent-decoded by segment). `watch_param` is `?watch=true|1`.
pub fn parse(method: &str, path: &str, watch_param: bool) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.to_ascii_lowercase(),
        ..Default::default()
    };
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (prefix, rest) = match parts.first() {
        Some(&"api") if parts.len() >= 2 => ("api", &parts[1..]),
        Some(&"apis") if parts.len() >= 3 => ("apis", &parts[1..]),
        _ => return info,
    };
    let (group, version, mut rest) = if prefix == "api" {
        ("", rest[0], &rest[1..])
    } else {
        (rest[0], rest[1], &rest[2..])
    };
    if rest.is_empty() {
        // `/api/v1`, `/apis/apps/v1`: discovery.
        return info;
    }
    info.is_resource = true;
    info.prefix = prefix.into();
    info.group = group.into();
    info.version = version.into();
    let mut legacy_watch = false;
    if rest[0] == "watch" {
        legacy_watch = true;
        rest = &rest[1..];
    }
    if rest.first() == Some(&"namespaces") {
        if rest.len() >= 3 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            info.namespace = rest[1].into();
            rest = &rest[2..];
        } else if rest.len() >= 2 {
            // `/namespaces/x` and `/namespaces/x/status`: the namespace object itself.
            info.namespace = rest[1].into();
        }
    }
    if let Some(r) = rest.first() {
        info.resource = (*r).into();
    }
    if let Some(n) = rest.get(1) {
        info.name = (*n).into();
    }
    if let Some(s) = rest.get(2) {
        info.subresource = (*s).into();
    }
    info.verb = match method {
        "GET" | "HEAD" => {
            if legacy_watch || watch_param {
                "watch"
            } else if info.name.is_empty() {
                "list"
            } else {
                "get"
            }
        }
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => {
            if info.name.is_empty() {
                "deletecollection"
            } else {
                "delete"
            }
        }
        other => {
            return RequestInfo {
                verb: other.to_ascii_lowercase(),
                ..info
            };
        }
    }
    .into();
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths() {
        let i = parse("GET", "/api/v1/namespaces/a/pods/b/status", false);
        assert_eq!(
            (
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.verb.as_str()
            ),
            ("a", "pods", "b", "status", "get")
        );
        let i = parse("GET", "/apis/apps/v1/deployments", true);
        assert_eq!(
            (i.group.as_str(), i.resource.as_str(), i.verb.as_str()),
            ("apps", "deployments", "watch")
        );
        let i = parse("GET", "/api/v1/watch/namespaces/a/configmaps", false);
        assert_eq!(
            (i.namespace.as_str(), i.resource.as_str(), i.verb.as_str()),
            ("a", "configmaps", "watch")
        );
        let i = parse("PUT", "/api/v1/namespaces/x/finalize", false);
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.namespace.as_str()
            ),
            ("namespaces", "x", "finalize", "x")
        );
        let i = parse("DELETE", "/api/v1/namespaces/x", false);
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.verb.as_str()),
            ("namespaces", "x", "delete")
        );
        let i = parse("DELETE", "/api/v1/namespaces/x/configmaps", false);
        assert_eq!(i.verb, "deletecollection");
        let i = parse("GET", "/healthz", false);
        assert!(!i.is_resource);
        assert!(!parse("GET", "/apis/apps/v1", false).is_resource);
    }
}
