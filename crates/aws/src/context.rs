//! What every handler is given: who is calling, in which account and region, and the store.

use std::sync::Arc;

use skiff_store::Store;

/// The authenticated principal behind a request (what `sts get-caller-identity` reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// `arn:aws:iam::000000000000:root`, `arn:aws:iam::…:user/alice`, `arn:aws:sts::…:assumed-role/R/session`.
    pub arn: String,
    /// `UserId` as STS reports it (account id for root, `AIDA…` for users, `AROA…:session` for roles).
    pub user_id: String,
    pub account_id: String,
    pub access_key_id: String,
}

/// Per-request context handed to every handler.
#[derive(Clone)]
pub struct RequestContext {
    pub account_id: String,
    /// From the SigV4 credential scope (every region works).
    pub region: String,
    pub request_id: String,
    pub caller: Caller,
    pub store: Arc<dyn Store>,
}
