//! IAM OIDC identity providers: Create/Get/List/DeleteOpenIDConnectProvider,
//! Add/RemoveClientIDTo/FromOpenIDConnectProvider, UpdateOpenIDConnectProviderThumbprint.
//!
//! The ARN is `arn:aws:iam::<acct>:oidc-provider/<host/path>` (the URL without `https://`). STS's
//! `AssumeRoleWithWebIdentity` finds the provider by the token's `iss` through [`find_by_issuer`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use skiff_store::{Precondition, Revision, Store};

use super::common::*;
use crate::context::RequestContext;
use crate::resources;

/// IAM's quotas: 100 client ids and 5 thumbprints per provider.
pub const MAX_CLIENT_IDS: usize = 100;
pub const MAX_THUMBPRINTS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OidcProviderRecord {
    /// Without the scheme: `oidc.eks.us-east-1.amazonaws.com/id/ABC`.
    pub url: String,
    pub arn: String,
    pub client_ids: Vec<String>,
    pub thumbprints: Vec<String>,
    pub create_date: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl OidcProviderRecord {
    fn key(account: &str, host_path: &str) -> String {
        iam_key(account, "oidc-provider", &encode_document(host_path))
    }

    pub fn to_wire(&self) -> Value {
        let mut o = Map::new();
        o.insert("Url".into(), json!(self.url));
        o.insert("ClientIDList".into(), json!(self.client_ids));
        o.insert("ThumbprintList".into(), json!(self.thumbprints));
        o.insert("CreateDate".into(), json!(self.create_date));
        put_tags(&mut o, &self.tags);
        Value::Object(o)
    }
}

/// `https://host/path/` → `host/path`.
pub fn host_path(url: &str) -> String {
    url.strip_prefix("https://")
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string()
}

/// The provider registered in `account` for a token issuer (`iss`).
pub async fn find_by_issuer(
    store: &dyn Store,
    account: &str,
    issuer: &str,
) -> IamResult<Option<OidcProviderRecord>> {
    Ok(
        resources::get(store, &OidcProviderRecord::key(account, &host_path(issuer)))
            .await?
            .map(|(p, _)| p),
    )
}

/// Load by ARN (`NoSuchEntity` when absent, in IAM's wording).
pub async fn load_by_arn(
    ctx: &RequestContext,
    provider_arn: &str,
) -> IamResult<(OidcProviderRecord, Revision)> {
    let missing = || {
        IamError::NoSuchEntity(format!(
            "OpenIDConnect Provider not found for arn {provider_arn}"
        ))
    };
    let hp = provider_arn
        .strip_prefix(&format!("arn:aws:iam::{}:oidc-provider/", ctx.account_id))
        .ok_or_else(missing)?;
    resources::get(&*ctx.store, &OidcProviderRecord::key(&ctx.account_id, hp))
        .await?
        .ok_or_else(missing)
}

pub async fn save(ctx: &RequestContext, p: &OidcProviderRecord, rev: Revision) -> IamResult<()> {
    commit(
        ctx,
        vec![resources::put_op(
            &OidcProviderRecord::key(&ctx.account_id, &p.url),
            p,
            Precondition::ModRevision(rev),
        )],
    )
    .await
}

fn check_thumbprints(t: &[String]) -> IamResult<()> {
    if t.len() > MAX_THUMBPRINTS {
        return Err(IamError::LimitExceeded(format!(
            "Thumbprint list must contain fewer than {} entries",
            MAX_THUMBPRINTS + 1
        )));
    }
    for tp in t {
        if tp.len() != 40 || !tp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '[{tp}]' at 'thumbprintList' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 40, Member must have length greater than or equal to 40]"
            )));
        }
    }
    Ok(())
}

fn check_client_id(id: &str) -> IamResult<()> {
    if id.is_empty() || id.len() > 255 {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{id}' at 'clientID' failed to satisfy constraint: Member must have length less than or equal to 255"
        )));
    }
    Ok(())
}

#[doc(alias = "CreateOpenIDConnectProvider")]
pub async fn create_open_id_connect_provider(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let url = req_str(&input, "Url")?;
    if !url.starts_with("https://") || url.len() <= "https://".len() {
        return Err(IamError::Validation(
            "Invalid URL: the OpenID Connect provider URL must begin with https://".into(),
        ));
    }
    let hp = host_path(url);
    let mut client_ids: Vec<String> = Vec::new();
    for id in str_list(&input, "ClientIDList") {
        check_client_id(&id)?;
        if !client_ids.contains(&id) {
            client_ids.push(id);
        }
    }
    if client_ids.len() > MAX_CLIENT_IDS {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
        )));
    }
    let thumbprints = str_list(&input, "ThumbprintList");
    check_thumbprints(&thumbprints)?;
    let provider = OidcProviderRecord {
        arn: format!("arn:aws:iam::{}:oidc-provider/{hp}", ctx.account_id),
        url: hp.clone(),
        client_ids,
        thumbprints,
        create_date: now(),
        tags: tags_of(&input)?,
    };
    let exists =
        || IamError::EntityAlreadyExists(format!("Provider with url {url} already exists."));
    commit(
        ctx,
        vec![resources::put_op(
            &OidcProviderRecord::key(&ctx.account_id, &hp),
            &provider,
            Precondition::MustNotExist,
        )],
    )
    .await
    .map_err(|e| match e {
        IamError::ConcurrentModification(_) => exists(),
        other => other,
    })?;
    let mut out = json!({ "OpenIDConnectProviderArn": provider.arn });
    if !provider.tags.is_empty() {
        out["Tags"] = tags_value(&provider.tags);
    }
    Ok(out)
}

#[doc(alias = "GetOpenIDConnectProvider")]
pub async fn get_open_id_connect_provider(ctx: &RequestContext, input: Value) -> IamResult<Value> {
    let (p, _) = load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    Ok(p.to_wire())
}

#[doc(alias = "ListOpenIDConnectProviders")]
pub async fn list_open_id_connect_providers(
    ctx: &RequestContext,
    _input: Value,
) -> IamResult<Value> {
    let all: Vec<OidcProviderRecord> =
        resources::list(&*ctx.store, &iam_key(&ctx.account_id, "oidc-provider", "")).await?;
    let list: Vec<Value> = all.iter().map(|p| json!({ "Arn": p.arn })).collect();
    Ok(json!({ "OpenIDConnectProviderList": list }))
}

#[doc(alias = "DeleteOpenIDConnectProvider")]
pub async fn delete_open_id_connect_provider(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (p, rev) = load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    commit(
        ctx,
        vec![skiff_store::Op::Delete {
            key: OidcProviderRecord::key(&ctx.account_id, &p.url),
            precondition: Precondition::ModRevision(rev),
        }],
    )
    .await?;
    Ok(json!({}))
}

#[doc(alias = "AddClientIDToOpenIDConnectProvider")]
pub async fn add_client_id_to_open_id_connect_provider(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (mut p, rev) = load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    let id = req_str(&input, "ClientID")?;
    check_client_id(id)?;
    if !p.client_ids.iter().any(|c| c == id) {
        if p.client_ids.len() >= MAX_CLIENT_IDS {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
            )));
        }
        p.client_ids.push(id.to_string());
        save(ctx, &p, rev).await?;
    }
    Ok(json!({}))
}

#[doc(alias = "RemoveClientIDFromOpenIDConnectProvider")]
pub async fn remove_client_id_from_open_id_connect_provider(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (mut p, rev) = load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    let id = req_str(&input, "ClientID")?;
    // IAM answers success when the id was not there.
    if p.client_ids.iter().any(|c| c == id) {
        p.client_ids.retain(|c| c != id);
        save(ctx, &p, rev).await?;
    }
    Ok(json!({}))
}

#[doc(alias = "UpdateOpenIDConnectProviderThumbprint")]
pub async fn update_open_id_connect_provider_thumbprint(
    ctx: &RequestContext,
    input: Value,
) -> IamResult<Value> {
    let (mut p, rev) = load_by_arn(ctx, req_str(&input, "OpenIDConnectProviderArn")?).await?;
    let thumbprints = str_list(&input, "ThumbprintList");
    check_thumbprints(&thumbprints)?;
    p.thumbprints = thumbprints;
    save(ctx, &p, rev).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::iam::test_support::*;

    const TP: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";

    #[tokio::test]
    async fn lifecycle() {
        let ctx = root_ctx();
        let url = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123";
        let out = iam(&ctx, "CreateOpenIDConnectProvider", json!({"Url": url, "ClientIDList": ["sts.amazonaws.com"], "ThumbprintList": [TP], "Tags": [{"Key": "c", "Value": "d"}]}))
            .await
            .unwrap();
        let arn = out["OpenIDConnectProviderArn"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            arn,
            "arn:aws:iam::000000000000:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC123"
        );
        let e = iam(
            &ctx,
            "CreateOpenIDConnectProvider",
            json!({"Url": url, "ThumbprintList": [TP]}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "EntityAlreadyExists");
        let e = iam(
            &ctx,
            "CreateOpenIDConnectProvider",
            json!({"Url": "https://x", "ThumbprintList": ["abc"]}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        iam(
            &ctx,
            "AddClientIDToOpenIDConnectProvider",
            json!({"OpenIDConnectProviderArn": arn, "ClientID": "other"}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "RemoveClientIDFromOpenIDConnectProvider",
            json!({"OpenIDConnectProviderArn": arn, "ClientID": "sts.amazonaws.com"}),
        )
        .await
        .unwrap();
        let other_tp = "a".repeat(40);
        iam(
            &ctx,
            "UpdateOpenIDConnectProviderThumbprint",
            json!({"OpenIDConnectProviderArn": arn, "ThumbprintList": [other_tp]}),
        )
        .await
        .unwrap();
        iam(
            &ctx,
            "TagOpenIDConnectProvider",
            json!({"OpenIDConnectProviderArn": arn, "Tags": [{"Key": "c", "Value": "e"}]}),
        )
        .await
        .unwrap();
        let got = iam(
            &ctx,
            "GetOpenIDConnectProvider",
            json!({"OpenIDConnectProviderArn": arn}),
        )
        .await
        .unwrap();
        assert_eq!(got["Url"], "oidc.eks.us-east-1.amazonaws.com/id/ABC123");
        assert_eq!(got["ClientIDList"], json!(["other"]));
        assert_eq!(got["ThumbprintList"], json!([other_tp]));
        assert_eq!(got["Tags"], json!([{"Key": "c", "Value": "e"}]));
        let list = iam(&ctx, "ListOpenIDConnectProviders", json!({}))
            .await
            .unwrap();
        assert_eq!(list["OpenIDConnectProviderList"], json!([{"Arn": arn}]));
        iam(
            &ctx,
            "DeleteOpenIDConnectProvider",
            json!({"OpenIDConnectProviderArn": arn}),
        )
        .await
        .unwrap();
        let e = iam(
            &ctx,
            "GetOpenIDConnectProvider",
            json!({"OpenIDConnectProviderArn": arn}),
        )
        .await
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("NoSuchEntity", 404));
    }
}
