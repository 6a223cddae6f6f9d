//! Add-ons: CreateAddon, DescribeAddon, ListAddons, UpdateAddon, DeleteAddon, DescribeAddonVersions
//! and DescribeAddonConfiguration (from the data tables below), and the domain functions the EKS
//! layer (`skiff_eks::addons`) calls while it installs them: [`addon_states`] (the records with their
//! private members), [`record_addon_state`] and [`remove_addon_record`].
//!
//! The handlers validate and record, as everywhere in `eks/`: CreateAddon answers `CREATING`,
//! UpdateAddon `UPDATING` (with an update record whose id the add-on keeps in `_updateId`),
//! DeleteAddon `DELETING` (with `_preserve`); the EKS layer applies the workloads, watches them roll
//! out and reports `ACTIVE`, `DEGRADED` or `CREATE_FAILED`, and removes a deleted record once its
//! objects are gone. `configurationValues` are checked here against the add-on's schema, so a bad
//! document fails the call as on EKS rather than the install.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;
use skiff_store::{Precondition, Store};

use super::clusters::load_cluster;
use super::common::{
    in_use, invalid, key_in, load, not_found, now, page_names, public, req_str, save, tags_of,
};
use super::updates::{new_update, record_update};
use crate::context::RequestContext;
use crate::resources;

/// One add-on EKS offers: name, type, and versions, each with the Kubernetes minor versions it
/// supports and whether it is the default there. Figures follow EKS's published versions.
struct AddonSpec {
    name: &'static str,
    kind: &'static str,
    versions: &'static [(
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    )],
}

const ALL: &[&str] = &["1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34"];

/// (version, supported cluster versions, cluster versions where it is the default).
const ADDONS: &[AddonSpec] = &[
    AddonSpec {
        name: "vpc-cni",
        kind: "networking",
        versions: &[
            ("v1.20.4-eksbuild.1", ALL, ALL),
            ("v1.19.6-eksbuild.1", ALL, &[]),
            (
                "v1.18.6-eksbuild.1",
                &["1.28", "1.29", "1.30", "1.31", "1.32"],
                &[],
            ),
        ],
    },
    AddonSpec {
        name: "kube-proxy",
        kind: "networking",
        versions: &[
            ("v1.34.0-eksbuild.2", &["1.34"], &["1.34"]),
            ("v1.33.3-eksbuild.6", &["1.33"], &["1.33"]),
            ("v1.32.6-eksbuild.8", &["1.32"], &["1.32"]),
            ("v1.31.10-eksbuild.8", &["1.31"], &["1.31"]),
            ("v1.30.14-eksbuild.8", &["1.30"], &["1.30"]),
            ("v1.29.15-eksbuild.16", &["1.29"], &["1.29"]),
            ("v1.28.15-eksbuild.31", &["1.28"], &["1.28"]),
        ],
    },
    AddonSpec {
        name: "coredns",
        kind: "networking",
        versions: &[
            ("v1.12.3-eksbuild.1", &["1.33", "1.34"], &["1.34"]),
            ("v1.12.1-eksbuild.2", &["1.32", "1.33"], &["1.33"]),
            (
                "v1.11.4-eksbuild.14",
                &["1.29", "1.30", "1.31", "1.32"],
                &["1.30", "1.31", "1.32"],
            ),
            ("v1.10.1-eksbuild.18", &["1.28", "1.29"], &["1.28", "1.29"]),
        ],
    },
    AddonSpec {
        name: "aws-ebs-csi-driver",
        kind: "storage",
        versions: &[
            ("v1.48.0-eksbuild.2", ALL, ALL),
            ("v1.45.0-eksbuild.2", ALL, &[]),
        ],
    },
    AddonSpec {
        name: "eks-pod-identity-agent",
        kind: "security",
        versions: &[
            ("v1.3.8-eksbuild.2", ALL, ALL),
            ("v1.3.7-eksbuild.2", ALL, &[]),
        ],
    },
];

/// What a new cluster runs before any add-on is created (`bootstrapSelfManagedAddons`): EKS installs
/// the self-managed VPC CNI a release behind the add-on's default; kube-proxy and CoreDNS at the
/// default version for the cluster's Kubernetes version.
const BOOTSTRAP: &[(&str, &str)] = &[("vpc-cni", "v1.19.6-eksbuild.1")];

/// The add-ons a cluster gets without asking (`bootstrapSelfManagedAddons`), in install order.
pub const SELF_MANAGED: &[&str] = &["vpc-cni", "kube-proxy", "coredns"];

/// The version of a self-managed add-on EKS installs on a new cluster of `cluster_version`.
pub fn bootstrap_addon_version(name: &str, cluster_version: &str) -> Option<&'static str> {
    BOOTSTRAP
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .or_else(|| default_addon_version(name, cluster_version))
}

/// Every add-on name DescribeAddonVersions lists.
pub fn addon_names() -> impl Iterator<Item = &'static str> {
    ADDONS.iter().map(|a| a.name)
}

fn spec(name: &str) -> Option<&'static AddonSpec> {
    ADDONS.iter().find(|a| a.name == name)
}

/// The default version of an add-on for a cluster version.
pub fn default_addon_version(name: &str, cluster_version: &str) -> Option<&'static str> {
    spec(name)?
        .versions
        .iter()
        .find(|v| v.2.contains(&cluster_version))
        .map(|v| v.0)
}

// ---- configuration schemas (DescribeAddonConfiguration) ----------------------------------------

/// Pieces every add-on schema shares: Kubernetes resource requirements, tolerations, selectors.
const RESOURCES: &str = r#"{"type":"object","additionalProperties":false,"properties":{
 "limits":{"type":"object","additionalProperties":false,"properties":{"cpu":{"type":"string"},"memory":{"type":"string"}}},
 "requests":{"type":"object","additionalProperties":false,"properties":{"cpu":{"type":"string"},"memory":{"type":"string"}}}}}"#;

/// The JSON schema of an add-on's `configurationValues` (the same for all its versions here),
/// written after the schemas EKS publishes: the keys users set, `additionalProperties: false`.
fn schema_source(name: &str) -> Option<String> {
    let common = |extra: &str| {
        format!(
            r#"{{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","additionalProperties":false,"properties":{{
 "resources":{RESOURCES},
 "tolerations":{{"type":"array","items":{{"type":"object"}}}},
 "nodeSelector":{{"type":"object","additionalProperties":{{"type":"string"}}}},
 "affinity":{{"type":["object","null"]}},
 "podAnnotations":{{"type":"object","additionalProperties":{{"type":"string"}}}},
 "podLabels":{{"type":"object","additionalProperties":{{"type":"string"}}}}{extra}}}}}"#
        )
    };
    Some(match name {
        "coredns" => common(
            r#",
 "replicaCount":{"type":"integer","minimum":1},
 "corefile":{"type":"string"},
 "computeType":{"type":"string"},
 "priorityClassName":{"type":"string"},
 "topologySpreadConstraints":{"type":"array","items":{"type":"object"}},
 "podDisruptionBudget":{"type":"object","additionalProperties":false,"properties":{"enabled":{"type":"boolean"},"maxUnavailable":{"type":["integer","string"]},"minAvailable":{"type":["integer","string"]}}},
 "autoScaling":{"type":"object","additionalProperties":false,"properties":{"enabled":{"type":"boolean"},"minReplicas":{"type":"integer","minimum":2},"maxReplicas":{"type":"integer","minimum":2}}}"#,
        ),
        "vpc-cni" => common(
            r#",
 "env":{"type":"object","additionalProperties":{"type":"string"}},
 "init":{"type":"object","additionalProperties":false,"properties":{"env":{"type":"object","additionalProperties":{"type":"string"}},"resources":RES}},
 "nodeAgent":{"type":"object","additionalProperties":false,"properties":{"enabled":{"type":["boolean","string"]},"enableCloudWatchLogs":{"type":"string"},"enablePolicyEventLogs":{"type":"string"},"healthProbeBindAddr":{"type":"string"},"metricsBindAddr":{"type":"string"},"resources":RES}},
 "enableNetworkPolicy":{"type":"string","enum":["true","false"]},
 "enableWindowsIpam":{"type":"string","enum":["true","false"]},
 "enableWindowsPrefixDelegation":{"type":"string","enum":["true","false"]},
 "eniConfig":{"type":"object"},
 "livenessProbeTimeoutSeconds":{"type":"integer","minimum":1},
 "readinessProbeTimeoutSeconds":{"type":"integer","minimum":1}"#
                .replace("RES", RESOURCES)
                .as_str(),
        ),
        "kube-proxy" => common(
            r#",
 "mode":{"type":"string","enum":["iptables","ipvs","nftables"]},
 "ipvs":{"type":"object","additionalProperties":false,"properties":{"scheduler":{"type":"string"}}},
 "priorityClassName":{"type":"string"}"#,
        ),
        "aws-ebs-csi-driver" => {
            let part = r#"{"type":"object","additionalProperties":false,"properties":{
 "replicaCount":{"type":"integer","minimum":1},"resources":RES,"tolerations":{"type":"array","items":{"type":"object"}},
 "nodeSelector":{"type":"object","additionalProperties":{"type":"string"}},"affinity":{"type":["object","null"]},
 "podAnnotations":{"type":"object","additionalProperties":{"type":"string"}},"podLabels":{"type":"object","additionalProperties":{"type":"string"}},
 "env":{"type":"array","items":{"type":"object"}},"logLevel":{"type":"integer","minimum":0},"extraVolumeTags":{"type":"object","additionalProperties":{"type":"string"}}}}"#
                .replace("RES", RESOURCES);
            format!(
                r#"{{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","additionalProperties":false,"properties":{{
 "controller":{part},"node":{part},
 "defaultStorageClass":{{"type":"object","additionalProperties":false,"properties":{{"enabled":{{"type":"boolean"}}}}}},
 "sidecars":{{"type":"object"}}}}}}"#
            )
        }
        "eks-pod-identity-agent" => common(
            r#",
 "agent":{"type":"object","additionalProperties":false,"properties":{"additionalArgs":{"type":"object","additionalProperties":{"type":"string"}}}}"#,
        ),
        _ => return None,
    })
}

/// The parsed schema of an add-on's configuration values.
pub fn configuration_schema(name: &str) -> Option<Value> {
    schema_source(name).and_then(|s| serde_json::from_str(&s).ok())
}

/// Check `configurationValues` (a JSON document) against the add-on's schema and return it parsed.
/// An empty document is no configuration. Messages follow EKS's ("Json schema validation failed
/// with error: [$.replicaCount: string found, integer expected]").
pub fn validate_configuration(name: &str, text: &str) -> Result<Option<Value>, AwsError> {
    const PREFIX: &str = "ConfigurationValue provided in request is not supported";
    if text.trim().is_empty() {
        return Ok(None);
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "{PREFIX}: Json schema validation failed with error: [$: {e}]"
        ))
    })?;
    let schema = configuration_schema(name).ok_or_else(|| {
        invalid(format!(
            "{PREFIX}: Addon {name} has no configuration schema"
        ))
    })?;
    let mut errors = Vec::new();
    check_schema(&schema, &doc, "$", &mut errors);
    if errors.is_empty() {
        Ok(Some(doc))
    } else {
        Err(invalid(format!(
            "{PREFIX}: Json schema validation failed with error: [{}]",
            errors.join(", ")
        )))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The subset of JSON Schema the add-on schemas use: `type` (one or a list), `properties`,
/// `additionalProperties` (false or a schema), `items`, `minimum`, `enum`.
fn check_schema(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let actual = type_name(v);
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let fits = |t: &&str| *t == actual || (*t == "number" && actual == "integer");
    if !allowed.is_empty() && !allowed.iter().any(fits) {
        errors.push(format!(
            "{at}: {actual} found, {} expected",
            allowed.join(", ")
        ));
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(v)
    {
        errors.push(format!(
            "{at}: does not have a value in the enumeration {}",
            Value::Array(options.clone())
        ));
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), v.as_f64())
        && n < min
    {
        errors.push(format!("{at}: must have a minimum value of {min}"));
    }
    if let Value::Object(members) = v {
        for (k, member) in members {
            let path = format!("{at}.{k}");
            match (&schema["properties"][k], &schema["additionalProperties"]) {
                (p, _) if !p.is_null() => check_schema(p, member, &path, errors),
                (_, Value::Bool(false)) => errors.push(format!(
                    "{path}: is not defined in the schema and the schema does not allow additional properties"
                )),
                (_, extra @ Value::Object(_)) => check_schema(extra, member, &path, errors),
                _ => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check_schema(item_schema, item, &format!("{at}[{i}]"), errors);
        }
    }
}

fn addon_key(account: &str, region: &str, cluster: &str, addon: &str) -> String {
    key_in(account, region, "addon", &format!("{cluster}/{addon}"))
}

fn no_addon(addon: &str, cluster: &str) -> AwsError {
    not_found(format!("No addon: {addon} found in cluster: {cluster}"))
}

/// The requested version must exist and support the cluster's Kubernetes version.
fn resolve_version(name: &str, requested: Option<&str>, k8s: &str) -> Result<String, AwsError> {
    let s = spec(name).ok_or_else(|| {
        invalid(format!(
            "Addon {name} specified is not supported in {k8s} kubernetes version"
        ))
    })?;
    match requested {
        None => default_addon_version(name, k8s)
            .map(str::to_string)
            .ok_or_else(|| {
                invalid(format!(
                    "Addon {name} specified is not supported in {k8s} kubernetes version"
                ))
            }),
        Some(v) => s
            .versions
            .iter()
            .find(|x| x.0 == v && x.1.contains(&k8s))
            .map(|x| x.0.to_string())
            .ok_or_else(|| invalid("Addon version specified is not supported")),
    }
}

/// `resolveConflicts` as given, else `NONE` (EKS's default).
fn resolve_conflicts(input: &Value) -> Result<&str, AwsError> {
    match input["resolveConflicts"].as_str() {
        None => Ok("NONE"),
        Some(r @ ("NONE" | "OVERWRITE" | "PRESERVE")) => Ok(r),
        Some(other) => Err(invalid(format!(
            "Invalid value for resolveConflicts: {other}"
        ))),
    }
}

#[doc(alias = "CreateAddon")]
pub async fn create_addon(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster_name = req_str(&input, "clusterName")?;
    let name = req_str(&input, "addonName")?;
    let (cluster, _) = load_cluster(ctx, cluster_name).await?;
    let k8s = cluster["version"].as_str().unwrap_or_default();
    let version = resolve_version(name, input["addonVersion"].as_str(), k8s)?;
    let conflicts = resolve_conflicts(&input)?;
    let key = addon_key(&ctx.account_id, &ctx.region, cluster_name, name);
    if load(&*ctx.store, &key).await?.is_some() {
        return Err(in_use("Addon already exists."));
    }
    if let Some(role) = input["serviceAccountRoleArn"].as_str() {
        super::clusters::check_role(ctx, role).await?;
    }
    if let Some(cfg) = input["configurationValues"].as_str() {
        validate_configuration(name, cfg)?;
    }
    let at = now();
    let mut addon = json!({
        "addonName": name,
        "clusterName": cluster_name,
        "status": "CREATING",
        "addonVersion": version,
        "health": {"issues": []},
        "addonArn": format!("arn:aws:eks:{}:{}:addon/{cluster_name}/{name}/{}", ctx.region, ctx.account_id, uuid::Uuid::new_v4()),
        "createdAt": at,
        "modifiedAt": at,
        "tags": tags_of(&input)?,
        "publisher": "eks",
        "owner": "aws",
        "_resolveConflicts": conflicts,
    });
    for m in [
        "serviceAccountRoleArn",
        "configurationValues",
        "namespaceConfig",
    ] {
        if !input[m].is_null() {
            addon[m] = input[m].clone();
        }
    }
    // Pod identity associations the add-on asks for are made through the ordinary API (they show in
    // ListPodIdentityAssociations); the add-on lists their ARNs.
    let namespace = input["namespaceConfig"]["namespace"]
        .as_str()
        .unwrap_or("kube-system");
    let mut associations = Vec::new();
    for a in input["podIdentityAssociations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let made = super::pod_identity::create_pod_identity_association(
            ctx,
            json!({"clusterName": cluster_name, "namespace": namespace,
                "serviceAccount": a["serviceAccount"], "roleArn": a["roleArn"]}),
        )
        .await;
        match made {
            Ok(out) => associations.push(out["association"].clone()),
            Err(e) => {
                undo_associations(ctx, cluster_name, &associations).await;
                return Err(e);
            }
        }
    }
    if !associations.is_empty() {
        addon["podIdentityAssociations"] = associations
            .iter()
            .map(|a| a["associationArn"].clone())
            .collect();
        addon["_associationIds"] = associations
            .iter()
            .map(|a| a["associationId"].clone())
            .collect();
    }
    if let Err(e) = save(
        &*ctx.store,
        &key,
        &addon,
        Precondition::MustNotExist,
        "Addon already exists.",
    )
    .await
    {
        undo_associations(ctx, cluster_name, &associations).await;
        return Err(e);
    }
    Ok(json!({ "addon": public(&addon) }))
}

/// Remove associations made for an add-on (a failed create, or DeleteAddon without `preserve`).
async fn undo_associations(ctx: &RequestContext, cluster: &str, associations: &[Value]) {
    for a in associations {
        let id = a["associationId"].as_str().or_else(|| a.as_str());
        let _ = super::pod_identity::delete_pod_identity_association(
            ctx,
            json!({"clusterName": cluster, "associationId": id}),
        )
        .await;
    }
}

#[doc(alias = "DescribeAddon")]
pub async fn describe_addon(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "addonName")?;
    load_cluster(ctx, cluster).await?;
    let (addon, _) = load(
        &*ctx.store,
        &addon_key(&ctx.account_id, &ctx.region, cluster, name),
    )
    .await?
    .ok_or_else(|| no_addon(name, cluster))?;
    Ok(json!({ "addon": public(&addon) }))
}

#[doc(alias = "ListAddons")]
pub async fn list_addons(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    load_cluster(ctx, cluster).await?;
    let prefix = key_in(
        &ctx.account_id,
        &ctx.region,
        "addon",
        &format!("{cluster}/"),
    );
    let all: Vec<Value> = resources::list(&*ctx.store, &prefix).await?;
    let names = all
        .iter()
        .filter_map(|a| a["addonName"].as_str().map(str::to_string))
        .collect();
    page_names(names, &input, "addons")
}

#[doc(alias = "UpdateAddon")]
pub async fn update_addon(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster_name = req_str(&input, "clusterName")?;
    let name = req_str(&input, "addonName")?;
    let (cluster, _) = load_cluster(ctx, cluster_name).await?;
    let key = addon_key(&ctx.account_id, &ctx.region, cluster_name, name);
    let (mut addon, rev) = load(&*ctx.store, &key)
        .await?
        .ok_or_else(|| no_addon(name, cluster_name))?;
    if addon["status"] == "CREATING"
        || addon["status"] == "UPDATING"
        || addon["status"] == "DELETING"
    {
        return Err(in_use(format!(
            "Addon {name} is currently {}",
            addon["status"].as_str().unwrap_or_default()
        )));
    }
    let conflicts = resolve_conflicts(&input)?;
    let mut params = Vec::new();
    if let Some(v) = input["addonVersion"].as_str() {
        let v = resolve_version(
            name,
            Some(v),
            cluster["version"].as_str().unwrap_or_default(),
        )?;
        params.push(json!({"type": "AddonVersion", "value": v}));
        addon["addonVersion"] = json!(v);
    }
    if let Some(role) = input["serviceAccountRoleArn"].as_str()
        && !role.is_empty()
    {
        super::clusters::check_role(ctx, role).await?;
    }
    if let Some(cfg) = input["configurationValues"].as_str() {
        validate_configuration(name, cfg)?;
    }
    for (m, t) in [
        ("serviceAccountRoleArn", "ServiceAccountRoleArn"),
        ("configurationValues", "ConfigurationValues"),
    ] {
        if let Some(v) = input[m].as_str() {
            // An empty string clears the member, as on EKS.
            if v.is_empty() {
                if let Some(o) = addon.as_object_mut() {
                    o.remove(m);
                }
            } else {
                addon[m] = json!(v);
            }
            params.push(json!({"type": t, "value": v}));
        }
    }
    if let Some(r) = input["resolveConflicts"].as_str() {
        params.push(json!({"type": "ResolveConflicts", "value": r}));
    }
    addon["_resolveConflicts"] = json!(conflicts);
    addon["status"] = json!("UPDATING");
    addon["modifiedAt"] = json!(now());
    let update = new_update("AddonUpdate", "InProgress", params);
    addon["_updateId"] = update["id"].clone();
    let mut stored = update.clone();
    stored["_addon"] = json!(name);
    record_update(ctx, cluster_name, None, &stored, Some((&key, &addon, rev))).await?;
    Ok(json!({ "update": update }))
}

/// Marks the add-on `DELETING`; the EKS layer removes its objects (or leaves them with
/// `preserve`) and then the record, so `aws eks wait addon-deleted` ends once they are gone.
#[doc(alias = "DeleteAddon")]
pub async fn delete_addon(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "addonName")?;
    load_cluster(ctx, cluster).await?;
    let key = addon_key(&ctx.account_id, &ctx.region, cluster, name);
    let (mut addon, rev) = load(&*ctx.store, &key)
        .await?
        .ok_or_else(|| no_addon(name, cluster))?;
    if addon["status"] == "DELETING" {
        return Ok(json!({ "addon": public(&addon) }));
    }
    let preserve = input["preserve"].as_bool().unwrap_or(false);
    if !preserve {
        let ids: Vec<Value> = addon["_associationIds"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        undo_associations(ctx, cluster, &ids).await;
    }
    addon["status"] = json!("DELETING");
    addon["modifiedAt"] = json!(now());
    addon["_preserve"] = json!(preserve);
    save(
        &*ctx.store,
        &key,
        &addon,
        Precondition::ModRevision(rev),
        "The addon was modified concurrently; retry",
    )
    .await?;
    Ok(json!({ "addon": public(&addon) }))
}

#[doc(alias = "DescribeAddonConfiguration")]
pub async fn describe_addon_configuration(
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name = req_str(&input, "addonName")?;
    let version = req_str(&input, "addonVersion")?;
    let known = spec(name).is_some_and(|s| s.versions.iter().any(|v| v.0 == version));
    let schema = schema_source(name).filter(|_| known).ok_or_else(|| {
        not_found(format!(
            "Addon {name} with version {version} does not exist"
        ))
    })?;
    let mut out =
        json!({"addonName": name, "addonVersion": version, "configurationSchema": schema});
    if let Some(sa) = pod_identity_service_account(name) {
        out["podIdentityConfiguration"] =
            json!([{"serviceAccount": sa.0, "recommendedManagedPolicies": [sa.1]}]);
    }
    Ok(out)
}

/// The ServiceAccount an add-on's AWS calls run as, and the managed policy it needs.
fn pod_identity_service_account(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "vpc-cni" => Some(("aws-node", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy")),
        "aws-ebs-csi-driver" => Some((
            "ebs-csi-controller-sa",
            "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
        )),
        _ => None,
    }
}

#[doc(alias = "DescribeAddonVersions")]
pub async fn describe_addon_versions(
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let k8s = input["kubernetesVersion"].as_str();
    let types: Vec<&str> = input["types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut infos = Vec::new();
    for a in ADDONS {
        if input["addonName"].as_str().is_some_and(|n| n != a.name)
            || (!types.is_empty() && !types.contains(&a.kind))
        {
            continue;
        }
        let versions: Vec<Value> = a
            .versions
            .iter()
            .filter(|v| k8s.is_none_or(|k| v.1.contains(&k)))
            .map(|v| {
                let compat: Vec<Value> = v.1.iter().filter(|c| k8s.is_none_or(|k| k == **c)).map(|c| json!({
                    "clusterVersion": c, "platformVersions": ["*"], "defaultVersion": v.2.contains(c)})).collect();
                json!({"addonVersion": v.0, "architecture": ["amd64", "arm64"], "computeTypes": ["ec2"],
                    "compatibilities": compat, "requiresConfiguration": false, "requiresIamPermissions": a.name == "aws-ebs-csi-driver" || a.name == "vpc-cni"})
            })
            .collect();
        if versions.is_empty() {
            continue;
        }
        infos.push(json!({"addonName": a.name, "type": a.kind, "addonVersions": versions, "publisher": "eks", "owner": "aws",
            "defaultNamespace": "kube-system"}));
    }
    Ok(json!({ "addons": infos }))
}

// ---- domain functions for the EKS layer --------------------------------------------------------

/// Every add-on record of a cluster (public members).
pub async fn list_addon_records(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<Vec<Value>, AwsError> {
    let all: Vec<Value> = resources::list(
        store,
        &key_in(account, region, "addon", &format!("{cluster}/")),
    )
    .await?;
    Ok(all.iter().map(public).collect())
}

/// Record an add-on's status (`ACTIVE`, `DEGRADED`, `CREATE_FAILED` …) once the EKS layer installed it.
pub async fn set_addon_status(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    addon: &str,
    status: &str,
) -> Result<(), AwsError> {
    let key = addon_key(account, region, cluster, addon);
    for _ in 0..5 {
        let (mut a, rev) = load(store, &key)
            .await?
            .ok_or_else(|| no_addon(addon, cluster))?;
        a["status"] = json!(status);
        a["modifiedAt"] = json!(now());
        match resources::commit(
            store,
            vec![resources::put_op(&key, &a, Precondition::ModRevision(rev))],
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(Some(e)) => return Err(e),
            Err(None) => continue,
        }
    }
    Err(in_use("The addon was modified concurrently; retry"))
}

/// Every add-on record of a cluster with its private members: `_resolveConflicts` (`NONE`,
/// `OVERWRITE`, `PRESERVE`), `_updateId` (the UpdateAddon in flight), `_preserve` (a DeleteAddon
/// that keeps the objects) and `_applied` (what the EKS layer last applied, its own bookkeeping).
pub async fn addon_states(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
) -> Result<Vec<Value>, AwsError> {
    resources::list(
        store,
        &key_in(account, region, "addon", &format!("{cluster}/")),
    )
    .await
}

/// What the EKS layer found while installing an add-on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AddonReport {
    /// `ACTIVE`, `DEGRADED`, `CREATE_FAILED`, `UPDATE_FAILED`, or the current status to keep it.
    pub status: String,
    /// `health.issues` (`{code, message, resourceIds}`), empty when healthy.
    pub issues: Vec<Value>,
    /// Replaces `_applied` when set (a digest of what was applied).
    pub applied: Option<String>,
}

/// Record what the EKS layer found. An UpdateAddon in flight (`_updateId`) is completed with it:
/// `Successful` when the add-on is `ACTIVE`, `Failed` (with the issues as errors) otherwise.
/// Writes nothing when nothing changed, so a reconciler may call it on every pass.
pub async fn record_addon_state(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    addon: &str,
    report: &AddonReport,
) -> Result<(), AwsError> {
    let key = addon_key(account, region, cluster, addon);
    for _ in 0..5 {
        let (mut a, rev) = load(store, &key)
            .await?
            .ok_or_else(|| no_addon(addon, cluster))?;
        let before = a.clone();
        a["status"] = json!(report.status);
        a["health"] = json!({ "issues": report.issues });
        if let Some(applied) = &report.applied {
            a["_applied"] = json!(applied);
        }
        let mut ops = Vec::new();
        let finished = report.status != "UPDATING" && report.status != "CREATING";
        if finished && let Some(id) = a["_updateId"].as_str().map(str::to_string) {
            let ukey = key_in(account, region, "update", &format!("{cluster}/{id}"));
            if let Some((mut u, urev)) = load(store, &ukey).await? {
                let ok = report.status == "ACTIVE";
                u["status"] = json!(if ok { "Successful" } else { "Failed" });
                if !ok {
                    u["errors"] = report
                        .issues
                        .iter()
                        .map(|i| json!({"errorCode": i["code"], "errorMessage": i["message"], "resourceIds": i["resourceIds"]}))
                        .collect();
                }
                ops.push(resources::put_op(
                    &ukey,
                    &u,
                    Precondition::ModRevision(urev),
                ));
            }
            if let Some(o) = a.as_object_mut() {
                o.remove("_updateId");
            }
        }
        if a == before {
            return Ok(());
        }
        a["modifiedAt"] = json!(now());
        ops.push(resources::put_op(&key, &a, Precondition::ModRevision(rev)));
        match resources::commit(store, ops).await {
            Ok(_) => return Ok(()),
            Err(Some(e)) => return Err(e),
            Err(None) => continue,
        }
    }
    Err(in_use("The addon was modified concurrently; retry"))
}

/// Remove a `DELETING` add-on's record once its objects are gone (DescribeAddon then answers
/// `ResourceNotFoundException`, what `aws eks wait addon-deleted` waits for). A record that is
/// not `DELETING` (re-created meanwhile) is left alone.
pub async fn remove_addon_record(
    store: &dyn Store,
    account: &str,
    region: &str,
    cluster: &str,
    addon: &str,
) -> Result<(), AwsError> {
    let key = addon_key(account, region, cluster, addon);
    let Some((a, rev)) = load(store, &key).await? else {
        return Ok(());
    };
    if a["status"] != "DELETING" {
        return Ok(());
    }
    resources::commit(
        store,
        vec![skiff_store::Op::Delete {
            key,
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await
    .map(|_| ())
    .map_err(|e| e.unwrap_or_else(|| in_use("The addon was modified concurrently; retry")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_cluster_version_has_a_default_of_each_addon() {
        for k in super::super::clusters::SUPPORTED_VERSIONS {
            for a in ADDONS {
                assert!(
                    default_addon_version(a.name, k).is_some(),
                    "{} on {k}",
                    a.name
                );
            }
        }
        assert_eq!(
            default_addon_version("kube-proxy", "1.33"),
            Some("v1.33.3-eksbuild.6")
        );
        assert!(resolve_version("kube-proxy", Some("v1.34.0-eksbuild.2"), "1.33").is_err());
        assert!(resolve_version("nope", None, "1.33").is_err());
    }

    #[test]
    fn configuration_values_are_checked_against_the_schema() {
        assert_eq!(
            validate_configuration(
                "coredns",
                r#"{"replicaCount": 3, "resources": {"limits": {"memory": "256Mi"}}}"#
            )
            .unwrap(),
            Some(json!({"replicaCount": 3, "resources": {"limits": {"memory": "256Mi"}}}))
        );
        assert_eq!(validate_configuration("coredns", "  ").unwrap(), None);
        let e = validate_configuration("coredns", r#"{"replicaCount": "3"}"#).unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(
            e.message,
            "ConfigurationValue provided in request is not supported: Json schema validation failed with error: [$.replicaCount: string found, integer expected]"
        );
        let e =
            validate_configuration("coredns", r#"{"replicas": 3, "replicaCount": 0}"#).unwrap_err();
        assert!(
            e.message
                .contains("$.replicas: is not defined in the schema"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("$.replicaCount: must have a minimum value of 1"),
            "{}",
            e.message
        );
        assert!(validate_configuration("coredns", "{not json").is_err());
        assert!(
            validate_configuration(
                "vpc-cni",
                r#"{"env": {"WARM_IP_TARGET": "5"}, "enableNetworkPolicy": "true"}"#
            )
            .is_ok()
        );
        assert!(validate_configuration("vpc-cni", r#"{"env": {"WARM_IP_TARGET": 5}}"#).is_err());
        assert!(
            validate_configuration(
                "aws-ebs-csi-driver",
                r#"{"controller": {"replicaCount": 1}}"#
            )
            .is_ok()
        );
        assert!(validate_configuration("kube-proxy", r#"{"mode": "userspace"}"#).is_err());
        for name in addon_names() {
            assert!(configuration_schema(name).is_some(), "{name} has a schema");
        }
    }

    #[tokio::test]
    async fn describe_addon_configuration_answers_the_schema() {
        let ctx = crate::ec2::testing::ctx();
        let out = describe_addon_configuration(
            &ctx,
            json!({"addonName": "coredns", "addonVersion": "v1.12.1-eksbuild.2"}),
        )
        .await
        .unwrap();
        let schema: Value =
            serde_json::from_str(out["configurationSchema"].as_str().unwrap()).unwrap();
        assert_eq!(schema["properties"]["replicaCount"]["type"], "integer");
        let e = describe_addon_configuration(
            &ctx,
            json!({"addonName": "coredns", "addonVersion": "v9.9.9"}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
        let out = describe_addon_configuration(
            &ctx,
            json!({"addonName": "vpc-cni", "addonVersion": "v1.20.4-eksbuild.1"}),
        )
        .await
        .unwrap();
        assert_eq!(
            out["podIdentityConfiguration"][0]["serviceAccount"],
            "aws-node"
        );
        assert_eq!(
            bootstrap_addon_version("vpc-cni", "1.33"),
            Some("v1.19.6-eksbuild.1")
        );
        assert_eq!(
            bootstrap_addon_version("coredns", "1.33"),
            Some("v1.12.1-eksbuild.2")
        );
    }
}
