//! The AWS provider of the Secrets Store CSI driver (ASCP, `provider: aws`): what a
//! `SecretProviderClass`'s `parameters` ask for, and fetching it from Secrets Manager as the pod's
//! IAM role.
//!
//! `parameters.objects` is a YAML string: a list of `objectName`, `objectType` (`secretsmanager`;
//! `ssmparameter` is refused: Skiff has no SSM Parameter Store), `objectAlias` (the file name),
//! `objectVersion` / `objectVersionLabel`, and `jmesPath` entries (`path`, `objectAlias`) that mount
//! one field of a JSON secret as its own file. Paths are dotted field names (`db.password`); full
//! JMESPath expressions are not evaluated and fail the mount with ASCP's wording for a bad path.
//!
//! Identity (see `docs/secrets.md`): the IRSA role annotated on the pod's ServiceAccount, else the
//! node role of the pod's nodegroup. `secretsmanager:GetSecretValue` on the secret is judged with
//! the IAM policy evaluator against that role's policies, as AWS would, before the value is read.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use skiff_aws::context::{Caller, RequestContext};

/// What one entry of `parameters.objects` asks for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSpec {
    pub object_name: String,
    #[serde(default)]
    pub object_type: Option<String>,
    #[serde(default)]
    pub object_alias: Option<String>,
    #[serde(default)]
    pub object_version: Option<String>,
    #[serde(default)]
    pub object_version_label: Option<String>,
    #[serde(default)]
    pub jmes_path: Vec<JmesPathEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JmesPathEntry {
    pub path: String,
    pub object_alias: String,
}

/// One file the driver would write into the pod's volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountedFile {
    /// File name inside the mount (the `objectName` a `secretObjects[].data[]` entry refers to).
    pub name: String,
    pub content: Vec<u8>,
    /// The Secrets Manager version id it came from (`SecretProviderClassPodStatus` objects).
    pub version: String,
}

impl ObjectSpec {
    /// The file name: the alias, else the object name with `/` made `_` (as ASCP does).
    pub fn file_name(&self) -> String {
        match &self.object_alias {
            Some(a) if !a.is_empty() => a.clone(),
            _ => self.object_name.replace('/', "_"),
        }
    }
}

/// Parses `parameters.objects`, with ASCP's checks. Errors are the provider's message.
pub fn parse_objects(yaml: &str) -> Result<Vec<ObjectSpec>, String> {
    let objects: Vec<ObjectSpec> = serde_saphyr::from_str(yaml)
        .map_err(|e| format!("Failed to load SecretProviderClass: {e}"))?;
    if objects.is_empty() {
        return Err("Failed to load SecretProviderClass: objects is empty".into());
    }
    let mut names = std::collections::HashSet::new();
    for o in &objects {
        if o.object_name.is_empty() {
            return Err("Object name must be specified".into());
        }
        let is_arn = o.object_name.starts_with("arn:");
        match o.object_type.as_deref() {
            Some("secretsmanager") => {}
            None if is_arn => {}
            Some("ssmparameter") => {
                return Err(format!(
                    "ssmparameter object {} is not supported: Skiff has no SSM Parameter Store",
                    o.object_name
                ));
            }
            Some(other) => return Err(format!("Invalid objectType: {other}")),
            None => return Err("Object type must be specified".into()),
        }
        if o.object_version.is_some() && o.object_version_label.is_some() {
            return Err(format!(
                "objectVersion and objectVersionLabel can not both be specified for {}",
                o.object_name
            ));
        }
        for name in
            std::iter::once(o.file_name()).chain(o.jmes_path.iter().map(|j| j.object_alias.clone()))
        {
            if !names.insert(name.clone()) {
                return Err(format!("Name already in use for objectName: {name}"));
            }
        }
    }
    Ok(objects)
}

/// A context acting as `role_arn` (an assumed-role session named as ASCP names its sessions).
pub fn role_context(
    store: std::sync::Arc<dyn skiff_store::Store>,
    account: &str,
    region: &str,
    role_arn: &str,
) -> RequestContext {
    let role = role_arn.rsplit('/').next().unwrap_or(role_arn);
    RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
        caller: Caller {
            arn: format!(
                "arn:aws:sts::{account}:assumed-role/{role}/secrets-store-csi-driver-provider-aws"
            ),
            user_id: "AROASKIFFASCP:secrets-store-csi-driver-provider-aws".to_string(),
            account_id: account.to_string(),
            access_key_id: String::new(),
        },
        store,
    }
}

/// Reads every object as `ctx`'s caller, checking its IAM permissions first. Errors carry ASCP's
/// message for the first object that failed.
pub async fn fetch(
    ctx: &RequestContext,
    objects: &[ObjectSpec],
) -> Result<Vec<MountedFile>, String> {
    let mut files = Vec::new();
    for o in objects {
        let mut input = json!({ "SecretId": o.object_name });
        if let Some(v) = &o.object_version {
            input["VersionId"] = json!(v);
        }
        if let Some(l) = &o.object_version_label {
            input["VersionStage"] = json!(l);
        }
        let failed = |why: String| {
            format!(
                "Failed to fetch secret from all regions. Verify secret exists and required permissions are granted for: {}: {why}",
                o.object_name
            )
        };
        skiff_aws::gateway::enforce::authorize(
            &*ctx.store,
            &ctx.caller,
            "secretsmanager",
            "GetSecretValue",
            &input,
            &ctx.region,
        )
        .await
        .map_err(|e| failed(format!("{}: {}", e.code, e.message)))?;
        let out = skiff_aws::secretsmanager::dispatch(ctx, "GetSecretValue", input)
            .await
            .map_err(|e| failed(format!("{}: {}", e.code, e.message)))?;
        let content = match (&out["SecretString"], &out["SecretBinary"]) {
            (Value::String(s), _) => s.as_bytes().to_vec(),
            (_, Value::String(b)) => B64.decode(b).unwrap_or_else(|_| b.as_bytes().to_vec()),
            _ => Vec::new(),
        };
        let version = out["VersionId"].as_str().unwrap_or_default().to_string();
        if !o.jmes_path.is_empty() {
            let doc: Value = serde_json::from_slice(&content).map_err(|_| {
                format!(
                    "Invalid JSON used with jmesPath in secret: {}.",
                    o.object_name
                )
            })?;
            for j in &o.jmes_path {
                let field = j
                    .path
                    .split('.')
                    .try_fold(&doc, |v, part| v.get(part))
                    .ok_or_else(|| {
                        format!(
                            "Invalid JMES Path: {}. JMES Path {} does not exist in secret {}",
                            j.path, j.path, o.object_name
                        )
                    })?;
                let bytes = match field {
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => other.to_string().into_bytes(),
                };
                files.push(MountedFile {
                    name: j.object_alias.clone(),
                    content: bytes,
                    version: version.clone(),
                });
            }
        }
        files.push(MountedFile {
            name: o.file_name(),
            content,
            version,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_with_ascps_checks() {
        let yaml = r#"
- objectName: "prod/db"
  objectType: "secretsmanager"
  jmesPath:
    - path: username
      objectAlias: dbuser
- objectName: "arn:aws:secretsmanager:us-east-1:000000000000:secret:api-AbCdEf"
  objectAlias: api
"#;
        let objs = parse_objects(yaml).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].file_name(), "prod_db");
        assert_eq!(objs[0].jmes_path[0].object_alias, "dbuser");
        assert_eq!(objs[1].file_name(), "api");
        assert_eq!(
            parse_objects("- objectName: x\n  objectType: s3\n").unwrap_err(),
            "Invalid objectType: s3"
        );
        assert!(
            parse_objects("- objectName: x\n  objectType: ssmparameter\n")
                .unwrap_err()
                .contains("SSM")
        );
        assert_eq!(
            parse_objects("- objectName: x\n").unwrap_err(),
            "Object type must be specified"
        );
        assert!(
            parse_objects(
                "- {objectName: a, objectType: secretsmanager, objectAlias: f}\n- {objectName: b, objectType: secretsmanager, objectAlias: f}\n"
            )
            .unwrap_err()
            .contains("Name already in use")
        );
        assert!(parse_objects("not: [a list").is_err());
        assert!(parse_objects("[]").is_err());
    }
}
