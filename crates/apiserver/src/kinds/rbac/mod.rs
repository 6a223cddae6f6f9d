//! The `rbac.authorization.k8s.io/v1` group: rules and bindings validated here, evaluated in `authz`.

pub mod cluster_role;
pub mod cluster_role_binding;
pub mod role;
pub mod role_binding;

use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{age_cell, age_column, arr, col, name_cell, name_column, s};
use crate::kinds::validation::not_supported;
use crate::registry::strategy::Column;

/// `ValidatePolicyRule` for each of `rules`.
pub(crate) fn validate_rules(obj: &Value, cluster: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, r) in arr(obj, "/rules").iter().enumerate() {
        let path = format!("rules[{i}]");
        let non_empty = |k: &str| {
            r.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        if !non_empty("verbs") {
            errs.push(FieldError::required(
                format!("{path}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        if non_empty("nonResourceURLs") {
            if !cluster {
                errs.push(FieldError::invalid(
                    format!("{path}.nonResourceURLs"),
                    r["nonResourceURLs"].clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if non_empty("apiGroups") || non_empty("resources") {
                errs.push(FieldError::invalid(
                    format!("{path}.nonResourceURLs"),
                    r["nonResourceURLs"].clone(),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if !non_empty("apiGroups") {
            errs.push(FieldError::required(
                format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if !non_empty("resources") {
            errs.push(FieldError::required(
                format!("{path}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

/// `ValidateRoleBinding`/`ValidateClusterRoleBinding`: roleRef and subjects.
pub(crate) fn validate_binding(obj: &Value, cluster: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["ClusterRole", "Role"]
    };
    let kind = obj.pointer("/roleRef/kind").unwrap_or(&Value::Null);
    if !kind.as_str().is_some_and(|k| kinds.contains(&k)) {
        errs.push(not_supported("roleRef.kind", kind, kinds));
    }
    if s(obj, "/roleRef/apiGroup") != "rbac.authorization.k8s.io" {
        errs.push(not_supported(
            "roleRef.apiGroup",
            obj.pointer("/roleRef/apiGroup").unwrap_or(&Value::Null),
            &["rbac.authorization.k8s.io"],
        ));
    }
    if s(obj, "/roleRef/name").is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    }
    for (i, sub) in arr(obj, "/subjects").iter().enumerate() {
        let path = format!("subjects[{i}]");
        if s(sub, "/name").is_empty() {
            errs.push(FieldError::required(format!("{path}.name"), ""));
        }
        let k = sub.get("kind").unwrap_or(&Value::Null);
        match k.as_str() {
            Some("ServiceAccount") => {
                if !s(sub, "/apiGroup").is_empty() {
                    errs.push(not_supported(
                        &format!("{path}.apiGroup"),
                        &sub["apiGroup"],
                        &[""],
                    ));
                }
                if cluster && s(sub, "/namespace").is_empty() {
                    errs.push(FieldError::required(format!("{path}.namespace"), ""));
                }
            }
            Some("User") | Some("Group") => {
                if s(sub, "/apiGroup") != "rbac.authorization.k8s.io" {
                    errs.push(not_supported(
                        &format!("{path}.apiGroup"),
                        sub.get("apiGroup").unwrap_or(&Value::Null),
                        &["rbac.authorization.k8s.io"],
                    ));
                }
            }
            _ => errs.push(not_supported(
                &format!("{path}.kind"),
                k,
                &["Group", "ServiceAccount", "User"],
            )),
        }
    }
    errs
}

/// `roleRef` cannot change.
pub(crate) fn role_ref_immutable(new: &Value, old: &Value) -> Vec<FieldError> {
    if new.get("roleRef") != old.get("roleRef") {
        return vec![FieldError::invalid(
            "roleRef",
            new.get("roleRef").cloned().unwrap_or(Value::Null),
            "cannot change roleRef",
        )];
    }
    Vec::new()
}

/// NAME CREATED AT (roles).
pub(crate) fn role_columns() -> Vec<Column> {
    vec![
        name_column(),
        col("Created At", "date", "Time when this role was created", 0),
    ]
}

pub(crate) fn role_row(obj: &Value) -> Vec<Value> {
    vec![name_cell(obj), json!(s(obj, "/metadata/creationTimestamp"))]
}

/// NAME ROLE AGE (+ wide USERS GROUPS SERVICEACCOUNTS).
pub(crate) fn binding_columns() -> Vec<Column> {
    vec![
        name_column(),
        col("Role", "string", "Role of the binding", 0),
        age_column(),
        col("Users", "string", "Users in the binding", 1),
        col("Groups", "string", "Groups in the binding", 1),
        col(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the binding",
            1,
        ),
    ]
}

pub(crate) fn binding_row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let subjects = arr(obj, "/subjects");
    let of = |kind: &str| {
        subjects
            .iter()
            .filter(|x| s(x, "/kind") == kind)
            .map(|x| {
                if kind == "ServiceAccount" {
                    format!("{}/{}", s(x, "/namespace"), s(x, "/name"))
                } else {
                    s(x, "/name").to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        name_cell(obj),
        json!(format!(
            "{}/{}",
            s(obj, "/roleRef/kind"),
            s(obj, "/roleRef/name")
        )),
        age_cell(obj, now),
        json!(of("User")),
        json!(of("Group")),
        json!(of("ServiceAccount")),
    ]
}
