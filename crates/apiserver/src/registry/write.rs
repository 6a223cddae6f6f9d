//! Create, update and delete: the one place where metadata rules, strategies, admission, finalizers
//! and the store's revision guard meet (`registry/generic/registry/store.go` `Create`/`Update`/`Delete`).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use skiff_k8s_core::patch_meta::schema_for;
use skiff_k8s_core::status::{ApiError, FieldError};
use skiff_k8s_core::validation::validate_object_meta;
use skiff_store::{Op, Precondition, StoreError};

use super::meta::{self, meta_mut, meta_str};
use super::patch::{reset_fields, with_manager};
use super::strategy::{ResourceInfo, Strategy};
use super::{Registry, api_version, decode, set_resource_version, store_error};
use crate::admission;

/// `fieldValidation`: what to do with fields the schema does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    /// The server default: accept, and say so in `Warning:` headers.
    #[default]
    Warn,
    /// 400 `strict decoding error: unknown field "spec.foo"` (kubectl's default).
    Strict,
}

impl FieldValidation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "" | "Warn" => Ok(Self::Warn),
            "Ignore" => Ok(Self::Ignore),
            "Strict" => Ok(Self::Strict),
            other => Err(ApiError::BadRequest(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

/// How a write is made.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: every step runs, nothing is stored.
    pub dry_run: bool,
    /// The `managedFields` manager (`fieldManager`, or derived from the User-Agent).
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// Set by server-side apply: managedFields get an `Apply` entry for the applied fields
    /// instead of an `Update` entry.
    pub apply: bool,
}

impl WriteOptions {
    fn manager(&self) -> &str {
        if self.field_manager.is_empty() {
            "unknown"
        } else {
            &self.field_manager
        }
    }
}

/// The outcome of a create or update.
#[derive(Clone, Debug)]
pub struct Written {
    pub object: Value,
    /// `Warning:` header texts (unknown fields, strategy warnings).
    pub warnings: Vec<String>,
    /// True when the write created the object (201 instead of 200).
    pub created: bool,
}

/// `DeleteOptions` as query parameters or body give them.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Clone, Debug)]
pub enum DeleteOutcome {
    /// Gone from the store; the last state.
    Deleted(Value),
    /// Marked with `deletionTimestamp`, waiting for finalizers or graceful termination.
    Pending(Value),
}

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

fn check_type_meta(info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let want_av = api_version(info);
    let o = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the request body must be a JSON object".into()))?;
    match o.get("apiVersion").and_then(Value::as_str) {
        Some(av) if !av.is_empty() && av != want_av => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
        _ => {
            o.insert("apiVersion".into(), Value::String(want_av));
        }
    }
    match o.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != info.kind => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => {
            o.insert("kind".into(), Value::String(info.kind.clone()));
        }
    }
    if let Some(m) = o.get("metadata")
        && !m.is_object()
        && !m.is_null()
    {
        return Err(ApiError::BadRequest(
            "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta".into(),
        ));
    }
    Ok(())
}

/// Fills or checks `metadata.namespace` against the URL.
fn check_namespace(info: &ResourceInfo, obj: &mut Value, ns: Option<&str>) -> Result<(), ApiError> {
    let m = meta_mut(obj);
    if !info.namespaced {
        m.remove("namespace");
        return Ok(());
    }
    let url_ns = ns.unwrap_or_default();
    match m.get("namespace").and_then(Value::as_str) {
        Some(body_ns) if !body_ns.is_empty() && body_ns != url_ns => Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        )),
        _ => {
            m.insert("namespace".into(), Value::String(url_ns.into()));
            Ok(())
        }
    }
}

fn canonicalize(
    kind: &Arc<dyn Strategy>,
    obj: Value,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let (obj, unknown) = kind.canonicalize(obj).map_err(ApiError::BadRequest)?;
    if !unknown.is_empty() {
        let msgs: Vec<String> = unknown
            .iter()
            .map(|p| format!("unknown field {p:?}"))
            .collect();
        match fv {
            FieldValidation::Strict => {
                return Err(ApiError::BadRequest(format!(
                    "strict decoding error: {}",
                    msgs.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(msgs),
            FieldValidation::Ignore => {}
        }
    }
    Ok(obj)
}

/// Generic metadata validation plus the kind's own, duplicates removed.
fn validate(kind: &Arc<dyn Strategy>, obj: &Value, mut errs: Vec<FieldError>) -> Vec<FieldError> {
    let info = kind.info();
    let empty = json!({});
    let m = obj.get("metadata").unwrap_or(&empty);
    let mut all = validate_object_meta(m, info.namespaced, kind.name_rule());
    all.append(&mut errs);
    let mut out: Vec<FieldError> = Vec::with_capacity(all.len());
    for e in all {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Records a non-apply write by `manager` in `managedFields` (`fieldmanager` `Update`).
fn track_update(
    info: &ResourceInfo,
    live: Option<&Value>,
    new: Value,
    manager: &str,
    subresource: &str,
) -> Result<Value, ApiError> {
    let schema = schema_for(&info.group, &info.kind);
    let resets = reset_fields(info, subresource, &new);
    with_manager(info, manager, subresource, resets, |who| {
        skiff_k8s_core::apply::track_update(live, new, schema, who)
    })
}

/// Server-owned metadata a client may not set on create.
fn reset_server_meta(obj: &mut Value) {
    let m = meta_mut(obj);
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "generation",
    ] {
        m.remove(k);
    }
}

fn encode(obj: &Value) -> Result<Bytes, ApiError> {
    let mut stored = obj.clone();
    if let Some(m) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&stored)
        .map(Bytes::from)
        .map_err(|e| ApiError::InternalError(e.to_string()))
}

/// The object without what changes on every write (resourceVersion, managedFields times), to
/// tell a no-op update.
fn comparable(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(mf) = m.get_mut("managedFields").and_then(Value::as_array_mut) {
            for e in mf {
                if let Some(o) = e.as_object_mut() {
                    o.remove("time");
                }
            }
        }
    }
    v
}

fn without_meta_and_status(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

impl Registry {
    /// POST: a new object (`generateName`, uid, creationTimestamp, resourceVersion = store revision).
    pub async fn create(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let info = kind.info();
        let mut obj = body;
        check_type_meta(info, &mut obj)?;
        let mut warnings = Vec::new();
        obj = canonicalize(kind, obj, opts.field_validation, &mut warnings)?;
        check_namespace(info, &mut obj, namespace)?;
        reset_server_meta(&mut obj);
        if meta_str(&obj, "name").is_empty() {
            let gen_name = meta_str(&obj, "generateName").to_string();
            if !gen_name.is_empty() {
                // names.SimpleNameGenerator: base truncated so the result fits 63 characters.
                let base: String = gen_name.chars().take(58).collect();
                let name = format!("{base}{}", meta::random_suffix());
                meta_mut(&mut obj).insert("name".into(), name.into());
            }
        }
        let name = meta_str(&obj, "name").to_string();
        {
            let m = meta_mut(&mut obj);
            m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
            m.insert("creationTimestamp".into(), meta::now_rfc3339().into());
        }
        kind.prepare_for_create(&mut obj);
        if meta::meta(&obj).is_some_and(|m| !m.contains_key("generation")) {
            meta_mut(&mut obj).insert("generation".into(), 1.into());
        }
        if !opts.apply {
            // Server-side apply computed managedFields already; every other create is an `Update`.
            obj = track_update(info, None, obj, opts.manager(), "")?;
        }

        let adm_req = admission::Request {
            info,
            namespace,
            name: &name,
            operation: admission::Operation::Create,
            subresource: "",
            old: None,
            dry_run: opts.dry_run,
        };
        admission::mutate(self, &adm_req, &mut obj).await?;
        let mut errs = kind.validate(&obj);
        let allocation = if admission::service_ip::applies(info) {
            // An existing name is 409, not a 422 about its (already allocated) addresses.
            if self.get_kv(info, namespace, &name).await?.is_some() {
                return Err(ApiError::already_exists(&info.group, &info.plural, &name));
            }
            match self.services().allocate(&mut obj, None, opts.dry_run) {
                Ok(a) => Some(a),
                Err(mut e) => {
                    errs.append(&mut e);
                    None
                }
            }
        } else {
            None
        };
        let errs = validate(kind, &obj, errs);
        if !errs.is_empty() {
            if let Some(a) = &allocation {
                self.services().release(a);
            }
            return Err(ApiError::invalid(&info.group, &info.kind, &name, errs));
        }
        let admitted = match admission::validate(self, &adm_req, &obj).await {
            Ok(a) => a,
            Err(e) => {
                if let Some(a) = &allocation {
                    self.services().release(a);
                }
                return Err(e);
            }
        };
        warnings.extend(admitted.warnings);
        warnings.extend(kind.warnings_on_create(&obj));
        if opts.dry_run {
            if let Some(a) = &allocation {
                self.services().release(a);
            }
            return Ok(Written {
                object: obj,
                warnings,
                created: true,
            });
        }
        let key = self.key(info, namespace, &name);
        let value = encode(&obj)?;
        let mut charge = admitted.quota;
        let mut recharges = 0;
        let res = loop {
            let mut ops = vec![Op::Put {
                key: key.clone(),
                value: value.clone(),
                precondition: Precondition::MustNotExist,
            }];
            ops.extend(charge.ops());
            match self.store().txn(ops).await {
                // A quota moved since it was read: charge it again on its new usage.
                Err(StoreError::PreconditionFailed { key: k, .. })
                    if charge.covers(&k)
                        && recharges < admission::resource_quota::MAX_RECHARGES =>
                {
                    recharges += 1;
                    charge =
                        match admission::resource_quota::charge(self, &adm_req, Some(&obj)).await {
                            Ok(c) => c,
                            Err(e) => {
                                if let Some(a) = &allocation {
                                    self.services().release(a);
                                }
                                return Err(e);
                            }
                        };
                }
                other => break other,
            }
        };
        match res {
            Ok(r) => {
                set_resource_version(&mut obj, r.revision);
                Ok(Written {
                    object: obj,
                    warnings,
                    created: true,
                })
            }
            Err(e) => {
                if let Some(a) = &allocation {
                    self.services().release(a);
                }
                Err(match e {
                    StoreError::PreconditionFailed { .. } => {
                        ApiError::already_exists(&info.group, &info.plural, &name)
                    }
                    other => store_error(other),
                })
            }
        }
    }

    /// PUT on the object or its `status` subresource (`subresource` = `""` or `"status"`).
    /// A `metadata.resourceVersion` in the body must equal the stored one (409 otherwise).
    pub async fn update(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        subresource: &str,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let info = kind.info();
        let mut obj = body;
        check_type_meta(info, &mut obj)?;
        let body_name = meta_str(&obj, "name");
        if body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let Some(kv) = self.get_kv(info, namespace, name).await? else {
            if kind.allow_create_on_update() && subresource.is_empty() {
                return self.create(kind, namespace, obj, opts).await;
            }
            return Err(ApiError::not_found(&info.group, &info.plural, name));
        };
        let old = decode(&kv)?;
        let body_rv = meta_str(&obj, "resourceVersion");
        if !body_rv.is_empty() && body_rv != kv.mod_revision.to_string() {
            return Err(ApiError::optimistic_lock(&info.group, &info.plural, name));
        }
        self.write_update(
            kind,
            namespace,
            name,
            obj,
            old,
            kv.mod_revision,
            subresource,
            opts,
        )
        .await
    }

    /// The update path after the object was read: `old` at revision `old_rev`.
    #[allow(
        clippy::too_many_arguments,
        reason = "one internal step shared by PUT, PATCH and controllers"
    )]
    pub(crate) async fn write_update(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
        obj: Value,
        old: Value,
        old_rev: i64,
        subresource: &str,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let info = kind.info();
        let mut warnings = Vec::new();
        let mut obj = canonicalize(kind, obj, opts.field_validation, &mut warnings)?;
        check_namespace(info, &mut obj, namespace)?;

        let body_uid = meta_str(&obj, "uid").to_string();
        let old_uid = meta_str(&old, "uid").to_string();
        if !body_uid.is_empty() && body_uid != old_uid {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                name,
                vec![FieldError::invalid(
                    "metadata.uid",
                    body_uid.into(),
                    "field is immutable",
                )],
            ));
        }
        if subresource == "finalize" {
            // `namespaces/finalize`: only `spec.finalizers` changes (the namespace strategy keeps
            // them on ordinary updates).
            let finalizers = obj.pointer("/spec/finalizers").cloned();
            let mut merged = old.clone();
            if let Some(spec) = merged
                .as_object_mut()
                .map(|o| o.entry("spec").or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut)
            {
                match finalizers {
                    Some(f) => spec.insert("finalizers".into(), f),
                    None => spec.remove("finalizers"),
                };
            }
            obj = merged;
        } else if subresource == "status" {
            // Only status changes through /status; everything else stays as stored.
            let status = obj.get("status").cloned();
            let mut merged = old.clone();
            if let Some(o) = merged.as_object_mut() {
                match status {
                    Some(s) => o.insert("status".into(), s),
                    None => o.remove("status"),
                };
            }
            obj = merged;
            kind.prepare_for_status_update(&mut obj, &old);
        } else {
            {
                let old_meta = meta::meta(&old).cloned().unwrap_or_default();
                let m = meta_mut(&mut obj);
                for k in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old_meta.get(k) {
                        Some(v) => m.insert(k.into(), v.clone()),
                        None => m.remove(k),
                    };
                }
                if !m.contains_key("managedFields")
                    && let Some(mf) = old_meta.get("managedFields")
                {
                    m.insert("managedFields".into(), mf.clone());
                }
            }
            if info.has_status {
                let old_status = old.get("status").cloned();
                if let Some(o) = obj.as_object_mut() {
                    match old_status {
                        Some(s) => o.insert("status".into(), s),
                        None => o.remove("status"),
                    };
                }
            }
            kind.prepare_for_update(&mut obj, &old);
            // Bump generation on a spec change unless the strategy already did.
            let gen_of = |v: &Value| {
                meta::meta(v)
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
            };
            if gen_of(&obj) == gen_of(&old)
                && without_meta_and_status(&obj) != without_meta_and_status(&old)
            {
                let g = gen_of(&old).unwrap_or(0) + 1;
                meta_mut(&mut obj).insert("generation".into(), g.into());
            }
        }
        meta_mut(&mut obj).remove("resourceVersion");
        let adm_req = admission::Request {
            info,
            namespace,
            name,
            operation: admission::Operation::Update,
            subresource,
            old: Some(&old),
            dry_run: opts.dry_run,
        };
        admission::mutate(self, &adm_req, &mut obj).await?;

        let mut errs = kind.validate_update(&obj, &old);
        let allocation = if admission::service_ip::applies(info) && subresource.is_empty() {
            match self.services().allocate(&mut obj, Some(&old), opts.dry_run) {
                Ok(a) => Some(a),
                Err(mut e) => {
                    errs.append(&mut e);
                    None
                }
            }
        } else {
            None
        };
        let errs = validate(kind, &obj, errs);
        if !errs.is_empty() {
            if let Some(a) = &allocation {
                self.services().release(a);
            }
            return Err(ApiError::invalid(&info.group, &info.kind, name, errs));
        }

        if comparable(&obj) == comparable(&old) {
            // No change: no write, no new resourceVersion (upstream skips the storage update).
            return Ok(Written {
                object: old,
                warnings,
                created: false,
            });
        }
        if !opts.apply {
            obj = track_update(info, Some(&old), obj, opts.manager(), subresource)?;
        }
        if opts.dry_run {
            if let Some(a) = &allocation {
                self.services().release(a);
            }
            set_resource_version(&mut obj, old_rev);
            return Ok(Written {
                object: obj,
                warnings,
                created: false,
            });
        }
        let key = self.key(info, namespace, name);
        let marked = !meta_str(&obj, "deletionTimestamp").is_empty();
        let grace = meta::meta(&obj)
            .and_then(|m| m.get("deletionGracePeriodSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let spec_finalized = obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
            && info.group.is_empty()
            && info.plural == "namespaces";
        let finish_delete =
            marked && grace == 0 && meta::finalizers(&obj).is_empty() && !spec_finalized;
        let op = if finish_delete {
            // The last finalizer went away from an object being deleted: it is deleted now.
            Op::Delete {
                key,
                precondition: Precondition::ModRevision(old_rev),
            }
        } else {
            Op::Put {
                key,
                value: encode(&obj)?,
                precondition: Precondition::ModRevision(old_rev),
            }
        };
        // Quota usage follows the change (a pod turning terminal or leaving gives back).
        let after = (!finish_delete).then_some(&obj);
        let quota_req = admission::Request {
            dry_run: false,
            ..adm_req
        };
        let mut charge = match admission::resource_quota::charge(self, &quota_req, after).await {
            Ok(c) => c,
            Err(e) => {
                if let Some(a) = &allocation {
                    self.services().release(a);
                }
                return Err(e);
            }
        };
        let mut recharges = 0;
        let res = loop {
            let mut ops = vec![op.clone()];
            ops.extend(charge.ops());
            match self.store().txn(ops).await {
                Err(StoreError::PreconditionFailed { key: k, .. })
                    if charge.covers(&k)
                        && recharges < admission::resource_quota::MAX_RECHARGES =>
                {
                    recharges += 1;
                    match admission::resource_quota::charge(self, &quota_req, after).await {
                        Ok(c) => charge = c,
                        Err(e) => {
                            if let Some(a) = &allocation {
                                self.services().release(a);
                            }
                            return Err(e);
                        }
                    }
                }
                other => break other,
            }
        };
        match res {
            Ok(r) => {
                if let Some(a) = &allocation {
                    self.services().commit_update(a, &old);
                }
                if finish_delete {
                    self.services().release_object(info, &obj);
                }
                set_resource_version(&mut obj, r.revision);
                Ok(Written {
                    object: obj,
                    warnings,
                    created: false,
                })
            }
            Err(e) => {
                if let Some(a) = &allocation {
                    self.services().release(a);
                }
                Err(match e {
                    StoreError::PreconditionFailed { current: None, .. } => {
                        ApiError::not_found(&info.group, &info.plural, name)
                    }
                    StoreError::PreconditionFailed { .. } => {
                        ApiError::optimistic_lock(&info.group, &info.plural, name)
                    }
                    other => store_error(other),
                })
            }
        }
    }

    /// Read-modify-write with retries on conflicts (patches, controllers): `mutate` gets the
    /// current object and returns the desired one.
    pub async fn update_with<F>(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
        subresource: &str,
        opts: &WriteOptions,
        mut mutate: F,
    ) -> Result<Written, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError> + Send,
    {
        let info = kind.info();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(kv) = self.get_kv(info, namespace, name).await? else {
                return Err(ApiError::not_found(&info.group, &info.plural, name));
            };
            let old = decode(&kv)?;
            let mut new = mutate(&old)?;
            check_type_meta(info, &mut new)?;
            if meta_str(&new, "name") != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta_str(&new, "name")
                )));
            }
            let pinned = meta_str(&new, "resourceVersion").to_string();
            if !pinned.is_empty() && pinned != kv.mod_revision.to_string() {
                return Err(ApiError::optimistic_lock(&info.group, &info.plural, name));
            }
            match self
                .write_update(
                    kind,
                    namespace,
                    name,
                    new,
                    old,
                    kv.mod_revision,
                    subresource,
                    opts,
                )
                .await
            {
                Err(ApiError::Conflict { .. }) if pinned.is_empty() && attempts < 8 => continue,
                other => return other,
            }
        }
    }

    /// DELETE of one object: preconditions, propagation finalizers, finalizers and graceful
    /// deletion mark the object; otherwise it is removed.
    pub async fn delete(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let info = kind.info();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(kv) = self.get_kv(info, namespace, name).await? else {
                return Err(ApiError::not_found(&info.group, &info.plural, name));
            };
            let obj = decode(&kv)?;
            match self
                .delete_once(kind, namespace, name, obj, kv.mod_revision, opts)
                .await
            {
                Err(ApiError::Conflict { detail, .. })
                    if detail == skiff_k8s_core::status::OPTIMISTIC_LOCK_MSG && attempts < 8 => {}
                other => return other,
            }
        }
    }

    async fn delete_once(
        &self,
        kind: &Arc<dyn Strategy>,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        rev: i64,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let info = kind.info();
        let conflict = |detail: String| ApiError::Conflict {
            group: info.group.clone(),
            resource: info.plural.clone(),
            name: name.into(),
            detail,
        };
        if let Some(uid) = &opts.precondition_uid {
            let actual = meta_str(&obj, "uid");
            if uid != actual {
                return Err(conflict(format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                )));
            }
        }
        if let Some(want) = &opts.precondition_resource_version
            && *want != rev.to_string()
        {
            return Err(conflict(format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"
            )));
        }
        admission::namespace_lifecycle::admit_delete(info, name)?;

        let mut finalizers = meta::finalizers(&obj);
        match opts.propagation_policy.as_deref() {
            None | Some("Background") => {}
            Some("Orphan") => {
                finalizers.retain(|f| f != FOREGROUND);
                if !finalizers.iter().any(|f| f == ORPHAN) {
                    finalizers.push(ORPHAN.into());
                }
            }
            Some("Foreground") => {
                finalizers.retain(|f| f != ORPHAN);
                if !finalizers.iter().any(|f| f == FOREGROUND) {
                    finalizers.push(FOREGROUND.into());
                }
            }
            Some(other) => {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "DeleteOptions",
                    "",
                    vec![FieldError::not_supported(
                        "propagationPolicy",
                        other.into(),
                        &["Foreground", "Background", "Orphan", "nil"],
                    )],
                ));
            }
        }
        let already_marked = !meta_str(&obj, "deletionTimestamp").is_empty();
        let grace = match opts.grace_period_seconds {
            Some(g) => g.max(0),
            None => kind.graceful_deletion_seconds(&obj).unwrap_or(0),
        };
        // A namespace is first only marked Terminating; the namespace controller empties it,
        // drops the `kubernetes` finalizer and deletes it again.
        let namespace_pending = info.group.is_empty()
            && info.plural == "namespaces"
            && (!already_marked
                || obj
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()));
        let must_mark = !finalizers.is_empty() || grace > 0 || namespace_pending;
        if must_mark {
            if already_marked
                && finalizers == meta::finalizers(&obj)
                && grace
                    >= meta::meta(&obj)
                        .and_then(|m| m.get("deletionGracePeriodSeconds"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
            {
                return Ok(DeleteOutcome::Pending(obj));
            }
            meta::set_finalizers(&mut obj, &finalizers);
            {
                let m = meta_mut(&mut obj);
                if !already_marked {
                    let ts = jiff::Timestamp::now()
                        .checked_add(jiff::SignedDuration::from_secs(grace))
                        .unwrap_or_else(|_| jiff::Timestamp::now());
                    let ts = jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts);
                    m.insert("deletionTimestamp".into(), ts.to_string().into());
                }
                m.insert("deletionGracePeriodSeconds".into(), grace.into());
                m.remove("resourceVersion");
            }
            if namespace_pending && let Some(o) = obj.as_object_mut() {
                let status = o.entry("status").or_insert_with(|| json!({}));
                if let Some(s) = status.as_object_mut() {
                    s.insert("phase".into(), "Terminating".into());
                }
            }
            if opts.dry_run {
                set_resource_version(&mut obj, rev);
                return Ok(DeleteOutcome::Pending(obj));
            }
            let r = self
                .store()
                .txn(vec![Op::Put {
                    key: self.key(info, namespace, name),
                    value: encode(&obj)?,
                    precondition: Precondition::ModRevision(rev),
                }])
                .await
                .map_err(|e| self.txn_error(info, name, e))?;
            set_resource_version(&mut obj, r.revision);
            return Ok(DeleteOutcome::Pending(obj));
        }
        if opts.dry_run {
            return Ok(DeleteOutcome::Deleted(obj));
        }
        // The quota usage the object gives back leaves in the same transaction.
        let quota_req = admission::Request {
            info,
            namespace,
            name,
            operation: admission::Operation::Delete,
            subresource: "",
            old: Some(&obj),
            dry_run: false,
        };
        let mut charge = admission::validate_delete(self, &quota_req).await?;
        let mut recharges = 0;
        loop {
            let mut ops = vec![Op::Delete {
                key: self.key(info, namespace, name),
                precondition: Precondition::ModRevision(rev),
            }];
            ops.extend(charge.ops());
            match self.store().txn(ops).await {
                Err(StoreError::PreconditionFailed { key: k, .. })
                    if charge.covers(&k)
                        && recharges < admission::resource_quota::MAX_RECHARGES =>
                {
                    recharges += 1;
                    charge = admission::validate_delete(self, &quota_req).await?;
                }
                other => {
                    other.map_err(|e| self.txn_error(info, name, e))?;
                    break;
                }
            }
        }
        self.services().release_object(info, &obj);
        Ok(DeleteOutcome::Deleted(obj))
    }

    fn txn_error(&self, info: &ResourceInfo, name: &str, e: StoreError) -> ApiError {
        match e {
            StoreError::PreconditionFailed { current: None, .. } => {
                ApiError::not_found(&info.group, &info.plural, name)
            }
            StoreError::PreconditionFailed { .. } => {
                ApiError::optimistic_lock(&info.group, &info.plural, name)
            }
            other => store_error(other),
        }
    }
}
