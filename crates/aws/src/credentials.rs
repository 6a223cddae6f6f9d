//! The contract between IAM/STS (which issue access keys) and the gateway (which verifies signatures).
//!
//! Keys are data in the store at `/aws/global/iam/access-key/<AccessKeyId>`, so no module reaches into
//! another's state: IAM `CreateAccessKey` and STS `AssumeRole*`/`GetSessionToken` write records here,
//! the SigV4 verifier reads them. The built-in root key (`test`/`test`, account 000000000000) is not stored.

use serde::{Deserialize, Serialize};

pub const ROOT_ACCESS_KEY_ID: &str = "test";
pub const ROOT_SECRET_ACCESS_KEY: &str = "test";
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// A signing credential and the principal it stands for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StoredCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Required in `X-Amz-Security-Token` when present (STS temporary credentials).
    pub session_token: Option<String>,
    pub account_id: String,
    pub arn: String,
    pub user_id: String,
    /// RFC 3339; past it the key answers `ExpiredToken`.
    pub expiration: Option<String>,
    /// `Active` or `Inactive` (IAM `UpdateAccessKey`).
    pub status: String,
}

pub fn credential_key(access_key_id: &str) -> String {
    format!("/aws/global/iam/access-key/{access_key_id}")
}
