//! The contract every kind implements (Kubernetes `RESTCreateStrategy`/`RESTUpdateStrategy` shape).
//!
//! The generic registry calls these in a fixed order:
//! create: `canonicalize` → `prepare_for_create` → admission → `validate` → store.
//! update: `canonicalize` → `prepare_for_update(new, old)` → admission → `validate_update` → store.
//! status subresource update: `prepare_for_status_update(new, old)` (keeps everything but status) → `validate_update`.
//! Objects are `serde_json::Value`s; a strategy may decode into `k8s_openapi` types where that is simpler.

use serde_json::Value;
use skiff_k8s_core::status::FieldError;

/// Static facts about a resource: what discovery, routing and `kubectl api-resources` show.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    /// API group; `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Lower-case plural used in URLs (`deployments`).
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Verbs for discovery (`create delete deletecollection get list patch update watch`).
    pub verbs: Vec<String>,
    pub has_status: bool,
    /// `scale` subresource: JSON paths of spec replicas, status replicas, label selector.
    pub scale: Option<ScalePaths>,
}

#[derive(Clone, Debug)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// A column of `kubectl get` output (`meta.k8s.io/v1` `TableColumnDefinition`).
#[derive(Clone, Debug)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer`, `date`, `number`, `boolean`.
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = default columns; >0 = only with `-o wide`.
    pub priority: i32,
}

/// Per-kind behaviour. Every method has the upstream default so a simple kind implements only `info`.
pub trait Strategy: Send + Sync + 'static {
    fn info(&self) -> &ResourceInfo;

    /// Decode into the kind's schema and re-encode: type errors become `Err` (400 BadRequest), fields
    /// the schema does not know are dropped and their paths returned (for `fieldValidation=Warn|Strict`).
    fn canonicalize(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        Ok((obj, Vec::new()))
    }

    /// Defaults and server-owned fields on create (status reset, `generation: 1`, defaulted spec fields).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    fn warnings_on_create(&self, _obj: &Value) -> Vec<String> {
        Vec::new()
    }

    /// On a main-resource update: keep `status` from `old` when the kind has a status subresource,
    /// bump `metadata.generation` when the spec changed, apply defaults.
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// Immutable fields and the create rules again.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        self.validate(new)
    }

    /// On a `/status` update: keep everything from `old` except `status`.
    fn prepare_for_status_update(&self, _new: &mut Value, _old: &Value) {}

    /// Columns of `kubectl get` (NAME first, AGE where upstream has it).
    fn columns(&self) -> Vec<Column> {
        vec![
            Column {
                name: "Name",
                type_: "string",
                format: "name",
                description: "Name",
                priority: 0,
            },
            Column {
                name: "Age",
                type_: "string",
                format: "",
                description: "Age",
                priority: 0,
            },
        ]
    }

    /// Cells of one row, in `columns()` order. `now` lets AGE render deterministically in tests.
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = obj
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null);
        vec![name, Value::String(crate::registry::age(obj, now))]
    }

    /// Value of a field for `--field-selector` beyond `metadata.name`/`metadata.namespace`
    /// (e.g. `spec.nodeName`, `status.phase` for pods). None = field not supported (400).
    fn field_value(&self, _obj: &Value, _field: &str) -> Option<String> {
        None
    }

    /// The rule `metadata.name` follows (`ValidateNameFunc`); the generic registry checks object
    /// metadata with it, so `validate` need not repeat `ValidateObjectMeta`.
    fn name_rule(&self) -> skiff_k8s_core::validation::NameRule {
        skiff_k8s_core::validation::NameRule::Dns1123Subdomain
    }

    /// `AllowCreateOnUpdate`: may a PUT to a missing name create it (Endpoints, Leases: yes).
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Graceful deletion (`CheckGracefulDelete`): Some(seconds) makes a DELETE without
    /// `gracePeriodSeconds=0` only mark the object (Pods bound to a node wait for their kubelet).
    fn graceful_deletion_seconds(&self, _obj: &Value) -> Option<i64> {
        None
    }
}
