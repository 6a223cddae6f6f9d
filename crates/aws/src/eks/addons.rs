//! Add-ons: CreateAddon, DescribeAddon, ListAddons, UpdateAddon, DeleteAddon, DescribeAddonVersions
//! (from the data table below), and `set_addon_status` for the EKS layer, which installs them.

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
            ("v1.19.6-eksbuild.7", ALL, &[]),
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

#[doc(alias = "CreateAddon")]
pub async fn create_addon(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster_name = req_str(&input, "clusterName")?;
    let name = req_str(&input, "addonName")?;
    let (cluster, _) = load_cluster(ctx, cluster_name).await?;
    let k8s = cluster["version"].as_str().unwrap_or_default();
    let version = resolve_version(name, input["addonVersion"].as_str(), k8s)?;
    let key = addon_key(&ctx.account_id, &ctx.region, cluster_name, name);
    if load(&*ctx.store, &key).await?.is_some() {
        return Err(in_use("Addon already exists."));
    }
    if let Some(role) = input["serviceAccountRoleArn"].as_str() {
        super::clusters::check_role(ctx, role).await?;
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
        "_resolveConflicts": input["resolveConflicts"].as_str().unwrap_or("NONE"),
    });
    for m in [
        "serviceAccountRoleArn",
        "configurationValues",
        "podIdentityAssociations",
        "namespaceConfig",
    ] {
        if !input[m].is_null() {
            addon[m] = input[m].clone();
        }
    }
    if let Some(cfg) = input["configurationValues"].as_str()
        && !cfg.trim().is_empty()
        && serde_json::from_str::<Value>(cfg).is_err()
    {
        return Err(invalid(
            "ConfigurationValue provided in request is not supported: Json schema validation failed",
        ));
    }
    save(
        &*ctx.store,
        &key,
        &addon,
        Precondition::MustNotExist,
        "Addon already exists.",
    )
    .await?;
    Ok(json!({ "addon": public(&addon) }))
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
    for (m, t) in [
        ("serviceAccountRoleArn", "ServiceAccountRoleArn"),
        ("configurationValues", "ConfigurationValues"),
    ] {
        if let Some(v) = input[m].as_str() {
            addon[m] = json!(v);
            params.push(json!({"type": t, "value": v}));
        }
    }
    if let Some(r) = input["resolveConflicts"].as_str() {
        params.push(json!({"type": "ResolveConflicts", "value": r}));
    }
    addon["status"] = json!("UPDATING");
    addon["modifiedAt"] = json!(now());
    let update = new_update("AddonUpdate", "InProgress", params);
    let mut stored = update.clone();
    stored["_addon"] = json!(name);
    record_update(ctx, cluster_name, None, &stored, Some((&key, &addon, rev))).await?;
    Ok(json!({ "update": update }))
}

/// Removes the record and answers `DELETING`; with `preserve` the EKS layer leaves the workloads.
#[doc(alias = "DeleteAddon")]
pub async fn delete_addon(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let cluster = req_str(&input, "clusterName")?;
    let name = req_str(&input, "addonName")?;
    load_cluster(ctx, cluster).await?;
    let key = addon_key(&ctx.account_id, &ctx.region, cluster, name);
    let (mut addon, rev) = load(&*ctx.store, &key)
        .await?
        .ok_or_else(|| no_addon(name, cluster))?;
    resources::commit(
        &*ctx.store,
        vec![skiff_store::Op::Delete {
            key,
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await
    .map_err(|e| e.unwrap_or_else(|| in_use("The addon was modified concurrently; retry")))?;
    addon["status"] = json!("DELETING");
    Ok(json!({ "addon": public(&addon) }))
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
}
