//! Access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey,
//! GetAccessKeyLastUsed.
//!
//! Each key is two records written in one transaction: IAM's own (`access-key/<user>/<id>`, for
//! listing and dates) and the signing credential in the shared contract (`credentials.rs`), which the
//! gateway's SigV4 verifier reads. Status changes go to both.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skiff_store::{Precondition, Store};

use super::common::*;
use super::users::{UserRecord, target_user};
use crate::context::RequestContext;
use crate::credentials::{StoredCredential, credential_key};
use crate::resources::{self, new_iam_id};

/// IAM allows two access keys per user.
pub const KEYS_PER_USER: usize = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyRecord {
    pub user_name: String,
    pub access_key_id: String,
    pub status: String,
    pub create_date: String,
}

impl AccessKeyRecord {
    fn key(account: &str, user: &str, id: &str) -> String {
        iam_key(
            account,
            "access-key",
            &format!("{}/{id}", user.to_ascii_lowercase()),
        )
    }

    pub async fn list_for(
        store: &dyn Store,
        account: &str,
        user: &str,
    ) -> IamResult<Vec<AccessKeyRecord>> {
        Ok(resources::list(store, &Self::key(account, user, "")).await?)
    }

    fn to_wire(&self) -> Value {
        json!({
            "UserName": self.user_name,
            "AccessKeyId": self.access_key_id,
            "Status": self.status,
            "CreateDate": self.create_date,
        })
    }
}

/// A 40-character secret from the alphabet AWS secrets use.
pub fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

async fn find_key(
    ctx: &RequestContext,
    user: &str,
    id: &str,
) -> IamResult<(AccessKeyRecord, skiff_store::Revision)> {
    resources::get(
        &*ctx.store,
        &AccessKeyRecord::key(&ctx.account_id, user, id),
    )
    .await?
    .ok_or_else(|| IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found.")))
}

#[doc(alias = "CreateAccessKey")]
pub async fn create_access_key(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = target_user(ctx, &input)?;
    let (user, _) = load::<UserRecord>(ctx, &name).await?;
    let existing = AccessKeyRecord::list_for(&*ctx.store, &ctx.account_id, &name).await?;
    if existing.len() >= KEYS_PER_USER {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"
        )));
    }
    let record = AccessKeyRecord {
        user_name: user.user_name.clone(),
        access_key_id: new_iam_id("AKIA")[..20].to_string(),
        status: "Active".into(),
        create_date: now(),
    };
    let secret = new_secret();
    let credential = StoredCredential {
        access_key_id: record.access_key_id.clone(),
        secret_access_key: secret.clone(),
        session_token: None,
        account_id: ctx.account_id.clone(),
        arn: user.arn.clone(),
        user_id: user.user_id.clone(),
        expiration: None,
        status: "Active".into(),
    };
    commit(
        ctx,
        vec![
            resources::put_op(
                &AccessKeyRecord::key(&ctx.account_id, &name, &record.access_key_id),
                &record,
                Precondition::MustNotExist,
            ),
            resources::put_op(
                &credential_key(&record.access_key_id),
                &credential,
                Precondition::MustNotExist,
            ),
        ],
    )
    .await?;
    let mut key = record.to_wire();
    key["SecretAccessKey"] = json!(secret);
    Ok(json!({ "AccessKey": key }))
}

#[doc(alias = "ListAccessKeys")]
pub async fn list_access_keys(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = target_user(ctx, &input)?;
    load::<UserRecord>(ctx, &name).await?;
    let items = AccessKeyRecord::list_for(&*ctx.store, &ctx.account_id, &name)
        .await?
        .iter()
        .map(AccessKeyRecord::to_wire)
        .collect();
    page("AccessKeyMetadata", items, &input)
}

#[doc(alias = "UpdateAccessKey")]
pub async fn update_access_key(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = target_user(ctx, &input)?;
    load::<UserRecord>(ctx, &name).await?;
    let id = req_str(&input, "AccessKeyId")?;
    let status = req_str(&input, "Status")?;
    if status != "Active" && status != "Inactive" {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
        )));
    }
    let (mut record, rev) = find_key(ctx, &name, id).await?;
    let (mut cred, cred_rev) = resources::get::<StoredCredential>(&*ctx.store, &credential_key(id))
        .await?
        .ok_or_else(|| {
            IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
        })?;
    record.status = status.to_string();
    cred.status = status.to_string();
    commit(
        ctx,
        vec![
            resources::put_op(
                &AccessKeyRecord::key(&ctx.account_id, &name, id),
                &record,
                Precondition::ModRevision(rev),
            ),
            resources::put_op(
                &credential_key(id),
                &cred,
                Precondition::ModRevision(cred_rev),
            ),
        ],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "DeleteAccessKey")]
pub async fn delete_access_key(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let name = target_user(ctx, &input)?;
    load::<UserRecord>(ctx, &name).await?;
    let id = req_str(&input, "AccessKeyId")?;
    find_key(ctx, &name, id).await?;
    let mut ops = vec![resources::delete_op(&AccessKeyRecord::key(
        &ctx.account_id,
        &name,
        id,
    ))];
    if resources::get::<StoredCredential>(&*ctx.store, &credential_key(id))
        .await?
        .is_some()
    {
        ops.push(resources::delete_op(&credential_key(id)));
    }
    commit(ctx, ops).await?;
    Ok(json!({}))
}

#[doc(alias = "GetAccessKeyLastUsed")]
pub async fn get_access_key_last_used(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let id = req_str(&input, "AccessKeyId")?;
    let denied = || IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."));
    let (cred, _) = resources::get::<StoredCredential>(&*ctx.store, &credential_key(id))
        .await?
        .ok_or_else(denied)?;
    let user = super::users::name_from_arn(&cred.arn).ok_or_else(denied)?;
    // Skiff does not record per-key usage; AWS reports "N/A" for keys never used.
    Ok(json!({
        "UserName": user,
        "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"},
    }))
}
