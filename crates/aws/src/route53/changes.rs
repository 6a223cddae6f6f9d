//! GetChange: every change Route 53 answered `PENDING` is `INSYNC` once asked about, since our
//! records are served the moment they are written.

use serde_json::{Value, json};

use super::common::{R53Error, R53Result, change_key, req_str};
use crate::context::RequestContext;
use crate::resources;

#[doc(alias = "GetChange")]
pub async fn get_change(ctx: &RequestContext, input: Value) -> R53Result<Value> {
    let id = req_str(&input, "Id")?;
    let bare = id.rsplit('/').next().unwrap_or(id);
    let Some((mut info, _)) = resources::get::<Value>(&*ctx.store, &change_key(ctx, bare)).await?
    else {
        return Err(R53Error::NoSuchChange(format!(
            "A change with the specified change ID does not exist: {bare}"
        )));
    };
    info["Status"] = json!("INSYNC");
    Ok(json!({ "ChangeInfo": info }))
}
