//! Launch templates and their versions: Create/Describe/Modify/DeleteLaunchTemplate(s),
//! Create/Describe/DeleteLaunchTemplateVersion(s), and [`resolve`] for RunInstances (and AutoScaling)
//! turning `{LaunchTemplateId|LaunchTemplateName, Version}` into the version's `LaunchTemplateData`.
//!
//! A template's versions live in its record (`_versions`), so a new version and the template's
//! `LatestVersionNumber` change in one write.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, array, opt_i64, opt_str, str_list};
use super::errors::{error, invalid_value, missing};
use super::{filters, pagination, tags};
use crate::context::RequestContext;
use crate::resources::new_id;

const DESCRIBE: Describe = Describe {
    kind: "launch-template",
    id_field: "LaunchTemplateId",
    ids_member: "LaunchTemplateIds",
    id_prefix: "lt",
    not_found: "InvalidLaunchTemplateId.NotFound",
    malformed: "InvalidLaunchTemplateId.Malformed",
    tags_field: "Tags",
    filters: &[
        ("create-time", "CreateTime"),
        ("launch-template-name", "LaunchTemplateName"),
    ],
    max_results: (1, 200),
};

const VERSION_FILTERS: &[(&str, &str)] = &[
    ("create-time", "CreateTime"),
    ("ebs-optimized", "LaunchTemplateData.EbsOptimized"),
    (
        "iam-instance-profile",
        "LaunchTemplateData.IamInstanceProfile.Arn|LaunchTemplateData.IamInstanceProfile.Name",
    ),
    ("image-id", "LaunchTemplateData.ImageId"),
    ("instance-type", "LaunchTemplateData.InstanceType"),
    ("is-default-version", "DefaultVersion"),
    ("kernel-id", "LaunchTemplateData.KernelId"),
    ("ram-disk-id", "LaunchTemplateData.RamDiskId"),
];

fn check_name(name: &str) -> Result<(), AwsError> {
    let ok = (3..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()./_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(error("InvalidLaunchTemplateName.MalformedException", &[]))
    }
}

/// Find a template by `LaunchTemplateId` or `LaunchTemplateName` in `input`.
async fn target(ctx: &RequestContext, input: &Value) -> Result<(Value, i64), AwsError> {
    match (
        opt_str(input, "LaunchTemplateId"),
        opt_str(input, "LaunchTemplateName"),
    ) {
        (Some(id), _) => {
            if !common::well_formed(id, "lt") {
                return Err(error("InvalidLaunchTemplateId.Malformed", &[("id", id)]));
            }
            common::load_or(
                ctx,
                "launch-template",
                id,
                "InvalidLaunchTemplateId.NotFound",
            )
            .await
        }
        (None, Some(name)) => {
            let found = by_name(ctx, name).await?.ok_or_else(|| {
                error(
                    "InvalidLaunchTemplateName.NotFoundException",
                    &[("name", name)],
                )
            })?;
            let id = found["LaunchTemplateId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            common::load_or(
                ctx,
                "launch-template",
                &id,
                "InvalidLaunchTemplateId.NotFound",
            )
            .await
        }
        _ => Err(missing("LaunchTemplateId")),
    }
}

async fn by_name(ctx: &RequestContext, name: &str) -> Result<Option<Value>, AwsError> {
    Ok(common::load_all(ctx, "launch-template")
        .await?
        .into_iter()
        .find(|t| t["LaunchTemplateName"] == name))
}

/// Resolve `$Latest`, `$Default` or a number to a version number of this template.
fn version_number(lt: &Value, v: &str) -> Result<i64, AwsError> {
    let id = lt["LaunchTemplateId"].as_str().unwrap_or_default();
    let n = match v {
        "$Latest" => lt["LatestVersionNumber"].as_i64().unwrap_or(1),
        "$Default" => lt["DefaultVersionNumber"].as_i64().unwrap_or(1),
        other => other
            .parse::<i64>()
            .map_err(|_| invalid_value(format!("The version '{other}' is not valid.")))?,
    };
    if array(lt, "_versions")
        .iter()
        .any(|x| x["VersionNumber"] == n)
    {
        Ok(n)
    } else {
        Err(error(
            "InvalidLaunchTemplateId.VersionNotFound",
            &[("version", v), ("id", id)],
        ))
    }
}

fn version_of(lt: &Value, n: i64) -> Value {
    let mut v = array(lt, "_versions")
        .iter()
        .find(|x| x["VersionNumber"] == n)
        .cloned()
        .unwrap_or_default();
    v["DefaultVersion"] = json!(lt["DefaultVersionNumber"] == n);
    v
}

fn new_version(
    ctx: &RequestContext,
    lt: &Value,
    n: i64,
    description: Option<&str>,
    data: Value,
) -> Value {
    let mut v = json!({
        "LaunchTemplateId": lt["LaunchTemplateId"], "LaunchTemplateName": lt["LaunchTemplateName"],
        "VersionNumber": n, "CreateTime": common::now(), "CreatedBy": ctx.caller.arn,
        "DefaultVersion": false, "LaunchTemplateData": data,
    });
    if let Some(d) = description {
        v["VersionDescription"] = json!(d);
    }
    v
}

#[doc(alias = "CreateLaunchTemplate")]
pub(crate) async fn create_launch_template(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let name =
        opt_str(&input, "LaunchTemplateName").ok_or_else(|| missing("LaunchTemplateName"))?;
    check_name(name)?;
    let data = input
        .get("LaunchTemplateData")
        .cloned()
        .ok_or_else(|| missing("LaunchTemplateData"))?;
    let tags = tags::for_create(&input, "launch-template")?;
    let _guard = common::write_lock(ctx).await;
    if by_name(ctx, name).await?.is_some() {
        return Err(error(
            "InvalidLaunchTemplateName.AlreadyExistsException",
            &[],
        ));
    }
    let mut lt = json!({
        "LaunchTemplateId": new_id("lt"), "LaunchTemplateName": name, "CreateTime": common::now(),
        "CreatedBy": ctx.caller.arn, "DefaultVersionNumber": 1, "LatestVersionNumber": 1, "Tags": tags,
    });
    lt["_versions"] = json!([new_version(
        ctx,
        &lt,
        1,
        opt_str(&input, "VersionDescription"),
        data
    )]);
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "launch-template",
        lt["LaunchTemplateId"].as_str().unwrap_or_default(),
        &lt,
    );
    txn.commit(ctx).await?;
    Ok(json!({ "LaunchTemplate": common::public(&lt) }))
}

#[doc(alias = "CreateLaunchTemplateVersion")]
pub(crate) async fn create_launch_template_version(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let mut data = input
        .get("LaunchTemplateData")
        .cloned()
        .ok_or_else(|| missing("LaunchTemplateData"))?;
    let _guard = common::write_lock(ctx).await;
    let (mut lt, rev) = target(ctx, &input).await?;
    // With SourceVersion, the new version inherits every member it does not set itself.
    if let Some(source) = opt_str(&input, "SourceVersion") {
        let n = version_number(&lt, source)?;
        let mut base = version_of(&lt, n)["LaunchTemplateData"].clone();
        if let (Some(b), Value::Object(new)) = (base.as_object_mut(), data.clone()) {
            for (k, v) in new {
                b.insert(k, v);
            }
            data = base;
        }
    }
    let n = lt["LatestVersionNumber"].as_i64().unwrap_or(0) + 1;
    let version = new_version(ctx, &lt, n, opt_str(&input, "VersionDescription"), data);
    if let Some(list) = lt["_versions"].as_array_mut() {
        list.push(version.clone());
    }
    lt["LatestVersionNumber"] = json!(n);
    let id = lt["LaunchTemplateId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut txn = Txn::new();
    txn.update(ctx, "launch-template", &id, &lt, rev);
    txn.commit(ctx).await?;
    Ok(json!({ "LaunchTemplateVersion": version }))
}

#[doc(alias = "DescribeLaunchTemplates")]
pub(crate) async fn describe_launch_templates(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let names = str_list(&input, "LaunchTemplateNames");
    let (mut items, next) = common::describe(ctx, &input, &DESCRIBE).await?;
    if !names.is_empty() {
        if let Some(missing) = names
            .iter()
            .find(|n| !items.iter().any(|t| t["LaunchTemplateName"] == n.as_str()))
        {
            return Err(error(
                "InvalidLaunchTemplateName.NotFoundException",
                &[("name", missing)],
            ));
        }
        items.retain(|t| names.iter().any(|n| t["LaunchTemplateName"] == n.as_str()));
    }
    Ok(common::listing("LaunchTemplates", items, next))
}

#[doc(alias = "DescribeLaunchTemplateVersions")]
pub(crate) async fn describe_launch_template_versions(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let filters = filters::parse(&input, VERSION_FILTERS)?;
    let wanted = str_list(&input, "Versions");
    let templates = if opt_str(&input, "LaunchTemplateId").is_some()
        || opt_str(&input, "LaunchTemplateName").is_some()
    {
        vec![target(ctx, &input).await?.0]
    } else if !wanted.is_empty() {
        return Err(missing("LaunchTemplateId"));
    } else {
        common::load_all(ctx, "launch-template").await?
    };
    let min = opt_str(&input, "MinVersion").map(|v| v.parse::<i64>().unwrap_or(i64::MAX));
    let max = opt_str(&input, "MaxVersion").map(|v| v.parse::<i64>().unwrap_or(i64::MIN));
    let mut out = Vec::new();
    for lt in &templates {
        let numbers: Vec<i64> = if wanted.is_empty() {
            array(lt, "_versions")
                .iter()
                .filter_map(|v| v["VersionNumber"].as_i64())
                .collect()
        } else {
            wanted
                .iter()
                .map(|w| version_number(lt, w))
                .collect::<Result<_, _>>()?
        };
        for n in numbers {
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                continue;
            }
            let mut v = version_of(lt, n);
            // Paging key: template then version, newest first as AWS lists them.
            v["_page"] = json!(format!(
                "{}/{:012}",
                lt["LaunchTemplateId"].as_str().unwrap_or_default(),
                999_999_999_999 - n
            ));
            if filters::matches(&v, &filters, VERSION_FILTERS, "Tags") {
                out.push(v);
            }
        }
    }
    out.sort_by(|a, b| a["_page"].as_str().cmp(&b["_page"].as_str()));
    out.dedup_by(|a, b| a["_page"] == b["_page"]);
    let (page, next) = pagination::page(out, "_page", &input, (1, 200))?;
    Ok(common::listing("LaunchTemplateVersions", page, next))
}

#[doc(alias = "ModifyLaunchTemplate")]
pub(crate) async fn modify_launch_template(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (mut lt, rev) = target(ctx, &input).await?;
    if let Some(v) = opt_str(&input, "DefaultVersion").or(opt_str(&input, "SetDefaultVersion")) {
        let n = version_number(&lt, v)?;
        lt["DefaultVersionNumber"] = json!(n);
    }
    let id = lt["LaunchTemplateId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut txn = Txn::new();
    txn.update(ctx, "launch-template", &id, &lt, rev);
    txn.commit(ctx).await?;
    Ok(json!({ "LaunchTemplate": common::public(&lt) }))
}

#[doc(alias = "DeleteLaunchTemplate")]
pub(crate) async fn delete_launch_template(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let (lt, _) = target(ctx, &input).await?;
    let mut txn = Txn::new();
    txn.delete(
        ctx,
        "launch-template",
        lt["LaunchTemplateId"].as_str().unwrap_or_default(),
    );
    txn.commit(ctx).await?;
    Ok(json!({ "LaunchTemplate": common::public(&lt) }))
}

#[doc(alias = "DeleteLaunchTemplateVersions")]
pub(crate) async fn delete_launch_template_versions(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let versions = str_list(&input, "Versions");
    if versions.is_empty() {
        return Err(missing("LaunchTemplateVersion"));
    }
    let _guard = common::write_lock(ctx).await;
    let (mut lt, rev) = target(ctx, &input).await?;
    let (id, name) = (
        lt["LaunchTemplateId"].clone(),
        lt["LaunchTemplateName"].clone(),
    );
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for v in &versions {
        let n = v.parse::<i64>().unwrap_or(-1);
        let exists = array(&lt, "_versions")
            .iter()
            .any(|x| x["VersionNumber"] == n);
        let refuse = |code: &str, message: &str| {
            json!({"LaunchTemplateId": id, "LaunchTemplateName": name, "VersionNumber": n,
                   "ResponseError": {"Code": code, "Message": message}})
        };
        if !exists {
            failed.push(refuse(
                "launchTemplateVersionDoesNotExist",
                "The specified launch template version does not exist.",
            ));
        } else if lt["DefaultVersionNumber"] == n {
            failed.push(refuse(
                "launchTemplateVersionIsDefaultVersion",
                "The default version of a launch template cannot be deleted.",
            ));
        } else {
            if let Some(list) = lt["_versions"].as_array_mut() {
                list.retain(|x| x["VersionNumber"] != n);
            }
            ok.push(
                json!({"LaunchTemplateId": id, "LaunchTemplateName": name, "VersionNumber": n}),
            );
        }
    }
    let mut txn = Txn::new();
    if !ok.is_empty() {
        txn.update(
            ctx,
            "launch-template",
            id.as_str().unwrap_or_default(),
            &lt,
            rev,
        );
    }
    txn.commit(ctx).await?;
    Ok(json!({"SuccessfullyDeletedLaunchTemplateVersions": ok,
              "UnsuccessfullyDeletedLaunchTemplateVersions": failed}))
}

/// A resolved launch template version: ids for the instance's tags and the data to launch with.
pub struct ResolvedTemplate {
    pub launch_template_id: String,
    pub launch_template_name: String,
    pub version: i64,
    pub data: Value,
}

/// Resolve a `LaunchTemplateSpecification` (`LaunchTemplateId` or `LaunchTemplateName`, and `Version`:
/// a number, `$Latest` or `$Default`, default `$Default`) as RunInstances and AutoScaling do.
pub async fn resolve(ctx: &RequestContext, spec: &Value) -> Result<ResolvedTemplate, AwsError> {
    let (lt, _) = target(ctx, spec).await?;
    let version = opt_str(spec, "Version")
        .map(str::to_string)
        .or_else(|| opt_i64(spec, "Version").map(|n| n.to_string()))
        .unwrap_or_else(|| "$Default".into());
    let n = version_number(&lt, &version)?;
    Ok(ResolvedTemplate {
        launch_template_id: lt["LaunchTemplateId"].as_str().unwrap_or_default().into(),
        launch_template_name: lt["LaunchTemplateName"].as_str().unwrap_or_default().into(),
        version: n,
        data: version_of(&lt, n)["LaunchTemplateData"].clone(),
    })
}
