//! Resource requests: collection, object and subresource paths for every verb, mapped onto the
//! registry. Decoding of bodies and query parameters happens here; the registry never sees HTTP.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use skiff_k8s_core::status::ApiError;

use super::list_stream::ListWriter;
use super::table::{IncludeObject, table, wants_table};
use super::{Api, Body, Ctx, Reply, not_found_path};
use crate::registry::custom_resources::{CRD_GROUP, CRD_PLURAL};
use crate::registry::hooks::{HookError, HookRequest};
use crate::registry::strategy::Strategy;
use crate::registry::{
    DeleteOptions, DeleteOutcome, FieldValidation, ListOptions, ListPage, PatchType, Registry,
    Served, WatchOptions, WriteOptions, Written,
};
use skiff_k8s_core::protobuf;
use skiff_k8s_core::selector::{FieldSelector, Selector};

fn hook_error(e: HookError, group: &str, resource: &str, kind: &str, name: &str) -> ApiError {
    match e {
        HookError::BadRequest(m) => ApiError::BadRequest(m),
        HookError::NotFound { resource, name } => ApiError::not_found(group, &resource, &name),
        HookError::Forbidden(m) => ApiError::Forbidden {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
            detail: m,
        },
        HookError::Invalid(causes) => ApiError::invalid(group, kind, name, causes),
        HookError::Internal(m) => ApiError::InternalError(m),
        HookError::Api(e) => e,
    }
}

/// Decodes a JSON or YAML request body into a JSON object value.
fn decode_body(ctx: &Ctx<'_>) -> Result<Value, ApiError> {
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or_default().trim();
    let v: Value = match media {
        // kubectl's typed clients send built-in kinds as protobuf; every decode failure is the
        // client's (upstream answers an undecodable body with 400 as well).
        protobuf::CONTENT_TYPE => {
            protobuf::decode_body(&ctx.body).map_err(|e| ApiError::BadRequest(e.to_string()))?
        }
        "application/yaml" | "application/apply-patch+yaml" | "text/yaml" => {
            let s = std::str::from_utf8(&ctx.body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
            serde_saphyr::from_str(s)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?
        }
        ""
        | "application/json"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/apply-patch+json"
        | "*/*" => {
            if ctx.body.is_empty() {
                return Err(ApiError::BadRequest(
                    "the body of the request was empty".into(),
                ));
            }
            serde_json::from_slice(&ctx.body).map_err(|e| {
                ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))
            })?
        }
        _ => {
            return Err(ApiError::UnsupportedMediaType {
                accepted: vec!["application/json".into(), "application/yaml".into()],
            });
        }
    };
    Ok(v)
}

fn write_options(ctx: &Ctx<'_>) -> Result<WriteOptions, ApiError> {
    let dry_run = match ctx.query.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )));
        }
    };
    let field_manager = match ctx.query.get("fieldManager") {
        Some(m) if !m.is_empty() => {
            if m.len() > 128 {
                return Err(ApiError::BadRequest(
                    "fieldManager: Too long: may not be more than 128 bytes".into(),
                ));
            }
            m.to_string()
        }
        _ => String::new(),
    };
    Ok(WriteOptions {
        dry_run,
        field_manager,
        field_validation: FieldValidation::parse(ctx.query.get("fieldValidation").unwrap_or(""))?,
        apply: false,
    })
}

/// The manager of a non-apply write with no `fieldManager`: from the User-Agent.
fn with_default_manager(mut o: WriteOptions, ctx: &Ctx<'_>) -> WriteOptions {
    if o.field_manager.is_empty() {
        let ua = ctx
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        o.field_manager = crate::registry::manager_from_user_agent(ua);
    }
    o
}

fn selectors(ctx: &Ctx<'_>) -> Result<(Selector, FieldSelector), ApiError> {
    let l = Selector::parse(ctx.query.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::BadRequest)?;
    let f = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""))
        .map_err(ApiError::BadRequest)?;
    Ok((l, f))
}

fn parse_int(ctx: &Ctx<'_>, k: &str) -> Result<Option<i64>, ApiError> {
    match ctx.query.get(k) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid value for {k}: {v:?}"))),
    }
}

/// A request body of the served version → what `served.kind` accepts.
fn to_internal(served: &Served, body: Value) -> Result<Value, ApiError> {
    match &served.conversion {
        Some(c) => c.to_internal(body),
        None => Ok(body),
    }
}

/// A list of the served version (items already converted).
fn list_object(served: &Served, page: ListPage) -> Value {
    let mut v = Registry::list_object(&served.kind, page);
    v["apiVersion"] = json!(crate::registry::api_version(&served.info));
    v
}

/// Table rows come from the version's columns over the stored objects; embedded objects are
/// converted to the served version.
fn served_table(
    served: &Served,
    items: &[Value],
    include: IncludeObject,
    resource_version: Option<String>,
    continue_token: Option<String>,
    with_columns: bool,
) -> Value {
    let mut t = table(
        &served.kind,
        items,
        include,
        resource_version,
        continue_token,
        with_columns,
    );
    if include == IncludeObject::Object
        && served.conversion.is_some()
        && let Some(rows) = t.get_mut("rows").and_then(Value::as_array_mut)
    {
        for r in rows {
            if let Some(o) = r.get_mut("object") {
                *o = served.external(o.take());
            }
        }
    }
    t
}

/// One line of a watch stream: `{"type":...,"object":...}` and a newline, around an object
/// already encoded.
fn event_line(type_: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + type_.len() + 24);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(type_.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// JSON, merge and strategic patches of a version that is not the stored form: the patch applies to
/// the object as this version shows it, and the result is written back as an update pinned to the
/// revision it was read at (retried on a concurrent write), as upstream's patcher does.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the PATCH request's parameters"
)]
async fn patch_converted(
    reg: &Registry,
    served: &Served,
    ns: Option<&str>,
    name: &str,
    patch: &Value,
    pt: PatchType,
    sub: &str,
    opts: &WriteOptions,
) -> Result<Written, ApiError> {
    let pins_rv = patch.pointer("/metadata/resourceVersion").is_some();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = served.external(reg.get(&served.storage, ns, name).await?);
        let patched = skiff_k8s_core::patch::apply_patch(
            &current,
            pt,
            patch,
            &served.info.group,
            &served.info.kind,
        )?;
        let body = to_internal(served, patched)?;
        match reg.update(&served.kind, ns, name, body, sub, opts).await {
            Err(ApiError::Conflict { .. }) if !pins_rv && attempt < 5 => continue,
            other => return other,
        }
    }
}

impl Api {
    pub(crate) async fn resource(&self, ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
        let info = ctx.info;
        let reg = &self.registry;
        // CRDs left terminating by a previous run finish their cleanup (once per registry).
        reg.resume_custom_resource_cleanup();
        let Some(served) = reg.served(&info.group, &info.version, &info.resource) else {
            return self.create_only(ctx).await;
        };
        let kind = served.storage.clone();
        let ki = served.info.clone();
        // Namespaced kinds need a namespace for single objects; cluster-scoped ones take none.
        let is_ns_kind = ki.group.is_empty() && ki.plural == "namespaces";
        let is_crd = ki.group == CRD_GROUP && ki.plural == CRD_PLURAL;
        let ns: Option<&str> = if ki.namespaced {
            if info.namespace.is_empty() {
                if !info.name.is_empty() || info.verb == "create" || info.verb == "deletecollection"
                {
                    return Err(not_found_path());
                }
                None
            } else {
                Some(info.namespace.as_str())
            }
        } else {
            if !info.namespace.is_empty() && !is_ns_kind {
                return Err(not_found_path());
            }
            None
        };
        let sub = info.subresource.as_str();
        match sub {
            "" => {}
            "status" if ki.has_status => {}
            "scale" if ki.scale.is_some() => return self.scale(ctx, &kind, ns).await,
            "finalize" if is_ns_kind && info.verb == "update" => {}
            // Pod logs and the streaming subresources of simulated nodes (`registry/pod_log.rs`,
            // `registry/pod_exec.rs`).
            "log" if ki.group.is_empty() && ki.plural == "pods" && info.verb == "get" => {
                let opts = crate::registry::pod_log::LogOptions::parse(|k| ctx.query.get(k))?;
                let lines = crate::registry::pod_log::pod_log(
                    reg,
                    ns.unwrap_or_default(),
                    &info.name,
                    opts,
                )
                .await?;
                let stream = lines.map(|b| Ok::<_, super::BoxError>(Frame::data(b)));
                return Ok(Reply {
                    status: StatusCode::OK,
                    body: StreamBody::new(stream).boxed_unsync(),
                    content_type: "text/plain",
                    warnings: Vec::new(),
                });
            }
            s if ki.group.is_empty()
                && ki.plural == "pods"
                && crate::registry::pod_exec::STREAMING_SUBRESOURCES.contains(&s) =>
            {
                let container = ctx.query.get("container");
                return Err(crate::registry::pod_exec::refuse(
                    reg,
                    ns.unwrap_or_default(),
                    &info.name,
                    s,
                    container,
                )
                .await);
            }
            other => {
                if info.verb == "create"
                    && let Some(h) = self.subresources.iter().find(|h| {
                        h.parent() == (ki.plural.as_str(), ki.group.as_str())
                            && h.subresource() == other
                    })
                {
                    let opts = write_options(ctx)?;
                    let body = decode_body(ctx)?;
                    let req = HookRequest {
                        user: ctx.user,
                        namespace: ns,
                        name: Some(&info.name),
                        dry_run: opts.dry_run,
                    };
                    let (k, _, _) = h.kind();
                    let out = h
                        .create(&req, body)
                        .await
                        .map_err(|e| hook_error(e, &ki.group, &ki.plural, k, &info.name))?;
                    return Ok(Reply::json(StatusCode::CREATED, &out));
                }
                return Err(not_found_path());
            }
        }
        let accept = ctx
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let as_table = wants_table(accept);
        let include = IncludeObject::parse(ctx.query.get("includeObject").unwrap_or(""));
        match info.verb.as_str() {
            "get" => {
                let obj = reg.get(&kind, ns, &info.name).await?;
                if as_table {
                    let rv = obj
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .map(String::from);
                    return Ok(Reply::json(
                        StatusCode::OK,
                        &served_table(&served, &[obj], include, rv, None, true),
                    ));
                }
                Ok(Reply::json(StatusCode::OK, &served.external(obj)))
            }
            "list" => self.list(ctx, &served, ns, as_table, include).await,
            "watch" => self.watch(ctx, &served, ns, as_table, include).await,
            "create" => {
                if !info.name.is_empty() {
                    return Err(ApiError::MethodNotSupported {
                        group: ki.group.clone(),
                        resource: ki.plural.clone(),
                        action: "create".into(),
                    });
                }
                if reg.custom_resource_terminating(&ki.group, &ki.plural) {
                    return Err(ApiError::MethodNotSupported {
                        group: ki.group.clone(),
                        resource: ki.plural.clone(),
                        action: "create".into(),
                    });
                }
                let opts = with_default_manager(write_options(ctx)?, ctx);
                let body = to_internal(&served, decode_body(ctx)?)?;
                let w = reg.create(&served.kind, ns, body, &opts).await?;
                if is_crd && !opts.dry_run {
                    reg.observe_custom_resource_definition(&w.object);
                }
                let mut r = Reply::json(StatusCode::CREATED, &served.external(w.object));
                r.warnings = w.warnings;
                Ok(r)
            }
            "update" => {
                let opts = with_default_manager(write_options(ctx)?, ctx);
                let body = to_internal(&served, decode_body(ctx)?)?;
                let w = reg
                    .update(&served.kind, ns, &info.name, body, sub, &opts)
                    .await?;
                if is_crd && !opts.dry_run {
                    reg.observe_custom_resource_definition(&w.object);
                }
                let mut r = Reply::json(
                    if w.created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    &served.external(w.object),
                );
                r.warnings = w.warnings;
                Ok(r)
            }
            "patch" => {
                let ct = ctx
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let pt = PatchType::from_content_type(ct)
                    .filter(|pt| PatchType::accepted_for(&ki.group, &ki.kind).contains(pt))
                    .ok_or_else(|| PatchType::unsupported(&ki.group, &ki.kind))?;
                let mut opts = write_options(ctx)?;
                if pt != PatchType::Apply {
                    opts = with_default_manager(opts, ctx);
                } else if ctx.query.get("force").is_some()
                    && !ctx.query.flag("force")
                    && ctx.query.get("force") != Some("false")
                {
                    return Err(ApiError::BadRequest(
                        "force: Invalid value: must be true or false".into(),
                    ));
                }
                let patch = decode_body(ctx)?;
                let force = ctx.query.flag("force");
                let facts = (pt == PatchType::Apply)
                    .then(|| reg.custom_apply_facts(&ki.group, &ki.plural))
                    .flatten();
                let w = match (&served.conversion, facts) {
                    (conv, Some(facts)) => {
                        let cfg = match conv {
                            Some(c) => c.apply_config_to_storage(patch)?,
                            None => patch,
                        };
                        reg.apply_custom_resource(
                            &kind, facts, ns, &info.name, cfg, sub, force, &opts,
                        )
                        .await?
                    }
                    (None, None) => {
                        reg.patch(&kind, ns, &info.name, patch, pt, sub, force, &opts)
                            .await?
                    }
                    (Some(conv), None) if pt == PatchType::Apply => {
                        let cfg = conv.apply_config_to_storage(patch)?;
                        reg.patch(&kind, ns, &info.name, cfg, pt, sub, force, &opts)
                            .await?
                    }
                    (Some(_), None) => {
                        patch_converted(reg, &served, ns, &info.name, &patch, pt, sub, &opts)
                            .await?
                    }
                };
                if is_crd && !opts.dry_run {
                    reg.observe_custom_resource_definition(&w.object);
                }
                let mut r = Reply::json(
                    if w.created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    &served.external(w.object),
                );
                r.warnings = w.warnings;
                Ok(r)
            }
            "delete" => {
                let opts = self.delete_options(ctx)?;
                let outcome = if is_crd {
                    reg.delete_custom_resource_definition(&info.name, &opts)
                        .await?
                } else {
                    reg.delete(&kind, ns, &info.name, &opts).await?
                };
                match outcome {
                    DeleteOutcome::Pending(obj) => {
                        Ok(Reply::json(StatusCode::OK, &served.external(obj)))
                    }
                    DeleteOutcome::Deleted(obj) => {
                        let uid = obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
                        let mut details = json!({"name": info.name, "kind": ki.plural, "uid": uid});
                        if !ki.group.is_empty() {
                            details["group"] = json!(ki.group);
                        }
                        Ok(Reply::json(
                            StatusCode::OK,
                            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Success", "details": details}),
                        ))
                    }
                }
            }
            "deletecollection" => {
                let opts = self.delete_options(ctx)?;
                let (l, f) = selectors(ctx)?;
                let page = reg
                    .list(
                        &kind,
                        ns,
                        &ListOptions {
                            label_selector: l,
                            field_selector: f,
                            ..Default::default()
                        },
                    )
                    .await?;
                let mut deleted = Vec::new();
                for obj in page.items {
                    let name = obj
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let ons = obj
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(String::from);
                    let outcome = if is_crd {
                        reg.delete_custom_resource_definition(&name, &opts).await
                    } else {
                        reg.delete(&kind, ons.as_deref().or(ns), &name, &opts).await
                    };
                    match outcome {
                        Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => {
                            deleted.push(served.external(o))
                        }
                        Err(ApiError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                let list = list_object(
                    &served,
                    crate::registry::ListPage {
                        items: deleted,
                        resource_version: page.resource_version,
                        continue_token: None,
                    },
                );
                Ok(Reply::json(StatusCode::OK, &list))
            }
            _ => Err(ApiError::MethodNotSupported {
                group: ki.group.clone(),
                resource: ki.plural.clone(),
                action: info.verb.clone(),
            }),
        }
    }

    /// A resource that is not stored: POST on a review, GET/LIST on a computed resource; anything
    /// else on an unknown resource is 404.
    async fn create_only(&self, ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
        let info = ctx.info;
        let Some(h) = self.create_only.iter().find(|h| {
            let i = h.info();
            i.group == info.group && i.version == info.version && i.plural == info.resource
        }) else {
            return Err(not_found_path());
        };
        let hi = h.info().clone();
        if !h.verbs().contains(&info.verb.as_str()) || !info.subresource.is_empty() {
            return Err(ApiError::MethodNotSupported {
                group: hi.group.clone(),
                resource: hi.plural.clone(),
                action: info.verb.clone(),
            });
        }
        // Computed read-only resources (metrics.k8s.io) answer GET and LIST.
        if matches!(info.verb.as_str(), "get" | "list") {
            let ns = (!info.namespace.is_empty()).then_some(info.namespace.as_str());
            let req = HookRequest {
                user: ctx.user,
                namespace: ns,
                name: None,
                dry_run: false,
            };
            let out = if info.verb == "get" {
                h.get(&req, &info.name).await
            } else {
                h.list(&req, ctx.query.get("labelSelector")).await
            }
            .map_err(|e| hook_error(e, &hi.group, &hi.plural, &hi.kind, ""))?;
            return Ok(Reply::json(StatusCode::OK, &out));
        }
        let opts = write_options(ctx)?;
        let body = decode_body(ctx)?;
        let ns = (!info.namespace.is_empty()).then_some(info.namespace.as_str());
        let req = HookRequest {
            user: ctx.user,
            namespace: ns,
            name: None,
            dry_run: opts.dry_run,
        };
        let out = h
            .create(&req, body)
            .await
            .map_err(|e| hook_error(e, &hi.group, &hi.plural, &hi.kind, ""))?;
        Ok(Reply::json(StatusCode::CREATED, &out))
    }

    fn delete_options(&self, ctx: &Ctx<'_>) -> Result<DeleteOptions, ApiError> {
        let body: Value = if ctx.body.is_empty() {
            json!({})
        } else {
            decode_body(ctx)?
        };
        let s = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
        let mut o = DeleteOptions {
            propagation_policy: s("propagationPolicy"),
            precondition_uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from),
            precondition_resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from),
            grace_period_seconds: body.get("gracePeriodSeconds").and_then(Value::as_i64),
            dry_run: body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All")),
        };
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && o.propagation_policy.is_none()
        {
            o.propagation_policy = Some("Orphan".into());
        }
        if let Some(p) = ctx.query.get("propagationPolicy") {
            o.propagation_policy = Some(p.to_string());
        }
        if let Some(g) = parse_int(ctx, "gracePeriodSeconds")? {
            o.grace_period_seconds = Some(g);
        }
        if ctx.query.get("orphanDependents") == Some("true") && o.propagation_policy.is_none() {
            o.propagation_policy = Some("Orphan".into());
        }
        o.dry_run |= write_options(ctx)?.dry_run;
        Ok(o)
    }

    async fn list(
        &self,
        ctx: &Ctx<'_>,
        served: &Served,
        ns: Option<&str>,
        as_table: bool,
        include: IncludeObject,
    ) -> Result<Reply, ApiError> {
        let (l, f) = selectors(ctx)?;
        let limit = parse_int(ctx, "limit")?.unwrap_or(0).max(0) as usize;
        let opts = ListOptions {
            label_selector: l,
            field_selector: f,
            limit,
            continue_token: ctx
                .query
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(String::from),
            resource_version: ctx.query.get("resourceVersion").map(String::from),
            resource_version_match: ctx
                .query
                .get("resourceVersionMatch")
                .filter(|c| !c.is_empty())
                .map(String::from),
        };
        let stream = self
            .registry
            .list_stream(&served.storage, ns, &opts)
            .await?;
        let resource_version = stream.resource_version();
        let mut pages = stream.into_pages();
        // The first page is read before the status line, so errors it finds (a field selector
        // the kind does not support) are still a `Status`.
        let first = match pages.next().await {
            Some(Err(e)) => return Err(e),
            other => other,
        };
        let pages = Box::pin(futures::stream::iter(first).chain(pages));
        let writer = ListWriter {
            served: served.clone(),
            table: as_table.then_some(include),
            // The continue token is known only at the end; JSON readers do not mind the order.
            metadata_last: limit > 0,
        };
        Ok(Reply {
            status: StatusCode::OK,
            body: writer.body(resource_version, pages),
            content_type: "application/json",
            warnings: Vec::new(),
        })
    }

    async fn watch(
        &self,
        ctx: &Ctx<'_>,
        served: &Served,
        ns: Option<&str>,
        as_table: bool,
        include: IncludeObject,
    ) -> Result<Reply, ApiError> {
        let (mut l, mut f) = selectors(ctx)?;
        // `/watch/namespaces/x/pods/name` watches one object.
        if !ctx.info.name.is_empty() {
            f = FieldSelector::parse(&format!("metadata.name={}", ctx.info.name))
                .map_err(ApiError::BadRequest)?;
            l = l.clone();
        }
        let timeout = parse_int(ctx, "timeoutSeconds")?
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64))
            // Upstream picks a random timeout of 30-60 minutes when none is given.
            .or(Some(Duration::from_secs(
                1800 + rand::random::<u64>() % 1800,
            )));
        let send_initial = match ctx.query.get("sendInitialEvents") {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        let opts = WatchOptions {
            label_selector: l,
            field_selector: f,
            resource_version: ctx.query.get("resourceVersion").map(String::from),
            allow_bookmarks: ctx.query.flag("allowWatchBookmarks"),
            send_initial_events: send_initial,
            timeout,
            bookmark_interval: None,
        };
        let events = self
            .registry
            .watch_shared(&served.storage, ns, opts)
            .await?;
        let served = served.clone();
        let mut first = true;
        let stream = events.map(move |ev| {
            let line = if as_table && matches!(ev.type_, "ADDED" | "MODIFIED" | "DELETED") {
                let t = served_table(
                    &served,
                    std::slice::from_ref(ev.object.value()),
                    include,
                    None,
                    None,
                    first,
                );
                first = false;
                event_line(ev.type_, &serde_json::to_vec(&t).unwrap_or_default())
            } else if ev.type_ == "ERROR" || served.conversion.is_none() {
                // The object's JSON is shared by every watcher that sends this event.
                event_line(ev.type_, ev.object.json())
            } else {
                let obj = served.external(ev.object.value().clone());
                event_line(ev.type_, &serde_json::to_vec(&obj).unwrap_or_default())
            };
            Ok::<_, super::BoxError>(Frame::data(line))
        });
        let body: Body = StreamBody::new(stream).boxed_unsync();
        Ok(Reply {
            status: StatusCode::OK,
            body,
            content_type: "application/json",
            warnings: Vec::new(),
        })
    }

    async fn scale(
        &self,
        ctx: &Ctx<'_>,
        kind: &Arc<dyn Strategy>,
        ns: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let info = ctx.info;
        let reg = &self.registry;
        match info.verb.as_str() {
            "get" => Ok(Reply::json(
                StatusCode::OK,
                &reg.get_scale(kind, ns, &info.name).await?,
            )),
            "update" => {
                let opts = with_default_manager(write_options(ctx)?, ctx);
                let body = decode_body(ctx)?;
                let out = reg
                    .update_scale(kind, ns, &info.name, &opts, |_| Ok(body.clone()))
                    .await?;
                Ok(Reply::json(StatusCode::OK, &out))
            }
            "patch" => {
                let ct = ctx
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let pt = PatchType::from_content_type(ct)
                    .ok_or_else(|| PatchType::unsupported("autoscaling", "Scale"))?;
                let opts = with_default_manager(write_options(ctx)?, ctx);
                let patch = decode_body(ctx)?;
                let out = reg
                    .patch_scale(kind, ns, &info.name, patch, pt, &opts)
                    .await?;
                Ok(Reply::json(StatusCode::OK, &out))
            }
            _ => Err(ApiError::MethodNotSupported {
                group: kind.info().group.clone(),
                resource: format!("{}/scale", kind.info().plural),
                action: info.verb.clone(),
            }),
        }
    }
}
