//! CustomResourceDefinition (`customresourcedefinitions`, `crd`/`crds`): name = plural.group, exactly
//! one storage version, scope and names rules; on create the status records the stored version and,
//! with no separate naming controller here, the accepted names and Established condition.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::typed::{Kind, arr, col, name_cell, name_column, s};
use crate::kinds::validation::{immutable, invalid_each, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct CustomResourceDefinition;

impl Kind for CustomResourceDefinition {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["crd", "crds"];
    const CATEGORIES: &'static [&'static str] = &["api-extensions"];
    const STATUS: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let plural = s(obj, "/spec/names/plural").to_string();
        let kind = s(obj, "/spec/names/kind").to_string();
        if let Some(names) = obj
            .pointer_mut("/spec/names")
            .and_then(Value::as_object_mut)
        {
            if names.get("singular").is_none_or(|v| v.is_null() || v == "") && !kind.is_empty() {
                names.insert("singular".into(), json!(kind.to_ascii_lowercase()));
            }
            if names.get("listKind").is_none_or(|v| v.is_null() || v == "") && !kind.is_empty() {
                names.insert("listKind".into(), json!(format!("{kind}List")));
            }
        }
        let _ = plural;
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("conversion")
                .or_insert_with(|| json!({"strategy": "None"}));
        }
    }

    fn on_create(obj: &mut Value) {
        let stored: Vec<Value> = arr(obj, "/spec/versions")
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .collect();
        let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        obj["status"] = json!({
            "acceptedNames": names,
            "storedVersions": stored,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
        });
    }

    /// A spec change is accepted at once (no separate naming controller): the accepted names follow
    /// the spec and a new storage version joins `storedVersions`.
    fn on_update(new: &mut Value, _old: &Value) {
        let names = new.pointer("/spec/names").cloned();
        let storage: Option<Value> = arr(new, "/spec/versions")
            .iter()
            .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .and_then(|v| v.get("name").cloned());
        let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(n) = names {
            status.insert("acceptedNames".into(), n);
        }
        if let Some(sv) = storage {
            let stored = status.entry("storedVersions").or_insert_with(|| json!([]));
            if let Some(a) = stored.as_array_mut()
                && !a.contains(&sv)
            {
                a.push(sv);
            }
        }
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let (group, plural) = (s(obj, "/spec/group"), s(obj, "/spec/names/plural"));
        let name = s(obj, "/metadata/name");
        if name != format!("{plural}.{group}") {
            errs.push(FieldError::invalid(
                "metadata.name",
                json!(name),
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
        if group.is_empty() {
            errs.push(FieldError::required("spec.group", ""));
        } else if !group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                json!(group),
                "should be a domain with at least one dot",
            ));
        }
        if plural.is_empty() {
            errs.push(FieldError::required("spec.names.plural", ""));
        } else {
            errs.extend(invalid_each(
                "spec.names.plural",
                plural,
                skiff_k8s_core::validation::is_dns1035_label(plural),
            ));
        }
        if s(obj, "/spec/names/kind").is_empty() {
            errs.push(FieldError::required("spec.names.kind", ""));
        }
        let scope = obj.pointer("/spec/scope").unwrap_or(&Value::Null);
        if !scope
            .as_str()
            .is_some_and(|s| s == "Cluster" || s == "Namespaced")
        {
            errs.push(not_supported(
                "spec.scope",
                scope,
                &["Cluster", "Namespaced"],
            ));
        }
        let versions = arr(obj, "/spec/versions");
        if versions.is_empty() {
            errs.push(FieldError::invalid(
                "spec.versions",
                json!(versions),
                "must have exactly one version marked as storage version",
            ));
        } else {
            let storage = versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .count();
            if storage != 1 {
                errs.push(FieldError::invalid(
                    "spec.versions",
                    json!(versions),
                    "must have exactly one version marked as storage version",
                ));
            }
            if !versions
                .iter()
                .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
            {
                errs.push(FieldError::invalid(
                    "spec.versions",
                    json!(versions),
                    "must have at least one version marked as served",
                ));
            }
            let mut seen: Vec<&str> = Vec::new();
            for (i, v) in versions.iter().enumerate() {
                let name = v.get("name").and_then(Value::as_str).unwrap_or("");
                if seen.contains(&name) {
                    errs.push(FieldError::duplicate(
                        format!("spec.versions[{i}].name"),
                        json!(name),
                    ));
                }
                seen.push(name);
                match v.pointer("/schema/openAPIV3Schema") {
                    None => errs.push(FieldError::required(
                        format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        "schemas are required",
                    )),
                    Some(schema) => {
                        let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
                        if schema.get("type").and_then(Value::as_str) != Some("object") {
                            errs.push(FieldError::invalid(
                                format!("{path}.type"),
                                schema.get("type").cloned().unwrap_or(json!("")),
                                "must be object at the root",
                            ));
                        }
                        crate::registry::custom_resources_schema::check_structural(
                            schema, &path, &mut errs,
                        );
                    }
                }
            }
        }
        errs
    }

    fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = immutable(new, old, "/spec/group", "spec.group");
        errs.extend(immutable(
            new,
            old,
            "/spec/names/plural",
            "spec.names.plural",
        ));
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Created At",
                "date",
                "Time when this CustomResourceDefinition was created",
                0,
            ),
        ]
    }

    fn row(obj: &Value, _now: jiff::Timestamp) -> Vec<Value> {
        vec![name_cell(obj), json!(s(obj, "/metadata/creationTimestamp"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn create_and_rules() {
        let st = Typed::<CustomResourceDefinition>::new();
        let (mut c, unknown) = st.canonicalize(crd()).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        st.prepare_for_create(&mut c);
        assert_eq!(c["spec"]["names"]["singular"], "widget");
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(c["status"]["conditions"][1]["type"], "Established");
        assert!(st.validate(&c).is_empty(), "{:?}", st.validate(&c));
        let mut bad = crd();
        bad["metadata"]["name"] = json!("widgets");
        bad["spec"]["versions"][0]["storage"] = json!(false);
        let paths: Vec<String> = st.validate(&bad).into_iter().map(|e| e.path).collect();
        assert_eq!(paths, vec!["metadata.name", "spec.versions"]);
        assert_eq!(
            st.info().short_names,
            vec!["crd".to_string(), "crds".to_string()]
        );
    }
}
