//! Registry housekeeping: garbage collection of blobs no image needs, and expiry of abandoned
//! uploads.
//!
//! Collection is mark-and-sweep over the store's blob links, in two steps:
//! 1. **Links.** A link (`/aws/<account>/<region>/ecr/layer/<repo>@<digest>`) is kept while an image
//!    of its repository names the digest (config, layers, schema 1 `fsLayers`), or while it is younger
//!    than the grace period: a push uploads its layers first and its manifest last, and the grace
//!    keeps those layers alive until the manifest arrives. Other links are deleted, each guarded by
//!    its revision so a concurrent re-push of the same layer wins.
//! 2. **Files.** Under the blob store's exclusive lock (pushes hold it shared from "is the file
//!    there" to "link committed", [`super::registry_blobs::finish_blob`]) every digest still linked
//!    anywhere is read, and blob files that no link names and that are older than the grace are
//!    removed. Blob files are shared by every account and region, so "anywhere" is every scope.
//!
//! Runs in the background: after image deletions ([`Blobs::request_gc`]) and every interval.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;
use skiff_store::{ListOptions, Op, Precondition, Store};

use super::common::Repository;
use super::registry_blobs::{Blobs, LayerLink};

/// How the housekeeping runs (`GatewayConfig::registry_gc`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcConfig {
    /// Uploads with no part for this long are dropped (their id answers `UploadNotFoundException`
    /// / `BLOB_UPLOAD_UNKNOWN` afterwards).
    pub upload_max_age: Duration,
    /// Blobs and links younger than this are never collected (protects pushes in flight).
    pub grace: Duration,
    /// How often the sweep runs when nothing asks for it.
    pub interval: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            upload_max_age: Duration::from_secs(24 * 3600),
            grace: Duration::from_secs(3600),
            interval: Duration::from_secs(300),
        }
    }
}

/// What one collection did (logged, and asserted by tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub links_removed: usize,
    pub blobs_removed: usize,
    pub uploads_expired: usize,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Every `(account, region)` that holds a key: one short read per scope, skipping past its keys.
async fn scopes(store: &dyn Store) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list(
                "/aws/",
                ListOptions {
                    start_after: after.clone(),
                    limit: 1,
                    ..ListOptions::default()
                },
            )
            .await
            .map_err(err)?;
        // The first key past `after` (a backend may hand back more than asked).
        let Some(kv) = page
            .items
            .iter()
            .find(|kv| after.as_ref().is_none_or(|a| kv.key > *a))
        else {
            return Ok(out);
        };
        let mut parts = kv.key["/aws/".len()..].splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(r), Some(_)) => {
                // `0` sorts right after `/`: the next key is past every key of this scope.
                after = Some(format!("/aws/{a}/{r}0"));
                out.push((a.to_string(), r.to_string()));
            }
            _ => after = Some(kv.key.clone()),
        }
    }
}

/// Every key and value under `prefix`, a page at a time.
async fn list_all(store: &dyn Store, prefix: &str) -> Result<Vec<skiff_store::KeyValue>, String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(
                prefix,
                ListOptions {
                    start_after: after.clone(),
                    limit: 1000,
                    ..ListOptions::default()
                },
            )
            .await
            .map_err(err)?;
        let before = out.len();
        let done = page.items.len() < 1000;
        let last = after.clone();
        out.extend(
            page.items
                .into_iter()
                .filter(|kv| last.as_ref().is_none_or(|a| kv.key > *a)),
        );
        if done || out.len() == before {
            return Ok(out);
        }
        after = out.last().map(|kv| kv.key.clone());
    }
}

/// The blob digests an image manifest needs.
pub fn manifest_blobs(manifest: &Value) -> impl Iterator<Item = &str> {
    let config = manifest["config"]["digest"].as_str();
    let layers = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str());
    let v1 = manifest["fsLayers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["blobSum"].as_str());
    config.into_iter().chain(layers).chain(v1)
}

fn younger_than(pushed_at: &str, grace: Duration) -> bool {
    let Ok(t) = pushed_at.parse::<jiff::Timestamp>() else {
        // Unreadable time: keep the link rather than lose a blob.
        return true;
    };
    let age = jiff::Timestamp::now().duration_since(t);
    age.as_secs_f64() < grace.as_secs_f64()
}

/// Step 1 for one scope: delete links no image of their repository needs.
async fn prune_links(
    store: &dyn Store,
    scope: &(String, String),
    grace: Duration,
) -> Result<usize, String> {
    let (a, r) = scope;
    let base = format!("/aws/{a}/{r}/ecr/");
    let links = list_all(store, &format!("{base}layer/")).await?;
    if links.is_empty() {
        return Ok(0);
    }
    let mut needed: HashMap<String, BTreeSet<String>> = HashMap::new();
    for kv in list_all(store, &format!("{base}repository/")).await? {
        let repo: Repository = serde_json::from_slice(&kv.value).map_err(err)?;
        let set = needed.entry(repo.name.clone()).or_default();
        for img in repo.images.values() {
            if let Ok(m) = serde_json::from_str::<Value>(&img.manifest) {
                set.extend(manifest_blobs(&m).map(str::to_string));
            }
        }
    }
    let mut removed = 0;
    for kv in links {
        let id = &kv.key[base.len() + "layer/".len()..];
        let Some((repo, digest)) = id.rsplit_once('@') else {
            continue;
        };
        let link: LayerLink = match serde_json::from_slice(&kv.value) {
            Ok(l) => l,
            Err(_) => continue,
        };
        let used = needed.get(repo).is_some_and(|s| s.contains(digest));
        if used || younger_than(&link.pushed_at, grace) {
            continue;
        }
        let op = Op::Delete {
            key: kv.key.clone(),
            precondition: Precondition::ModRevision(kv.mod_revision),
        };
        match store.txn(vec![op]).await {
            Ok(_) => removed += 1,
            // Re-pushed meanwhile: the newer link stands.
            Err(skiff_store::StoreError::PreconditionFailed { .. }) => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(removed)
}

/// One full collection (both steps). Safe to run while pushes go on.
pub async fn collect(
    store: &dyn Store,
    blobs: &Blobs,
    grace: Duration,
) -> Result<GcReport, String> {
    let mut report = GcReport::default();
    let scopes = scopes(store).await?;
    for scope in &scopes {
        report.links_removed += prune_links(store, scope, grace).await?;
    }
    let dir = blobs.dir().join("blobs").join("sha256");
    let _exclusive = blobs.gc_lock.write().await;
    let mut live = BTreeSet::new();
    for (a, r) in &scopes {
        for kv in list_all(store, &format!("/aws/{a}/{r}/ecr/layer/")).await? {
            if let Some((_, d)) = kv.key.rsplit_once("@sha256:") {
                live.insert(d.to_string());
            }
        }
    }
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(err(e)),
    };
    while let Some(entry) = entries.next_entry().await.map_err(err)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if live.contains(&name) {
            continue;
        }
        let old = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= grace);
        if old && tokio::fs::remove_file(entry.path()).await.is_ok() {
            report.blobs_removed += 1;
        }
    }
    Ok(report)
}

/// Drop uploads idle for `max_age` or more; uploads busy right now are left alone.
pub async fn expire_uploads(blobs: &Blobs, max_age: Duration) -> usize {
    let mut n = 0;
    for (id, upload) in blobs.upload_entries() {
        let Ok(up) = upload.try_lock() else {
            continue;
        };
        if up.touched.elapsed() >= max_age {
            blobs.drop_upload(&id, &up.path).await;
            n += 1;
        }
    }
    n
}

/// The background housekeeper; ends once the registry (the last strong `Blobs`) is gone.
pub fn spawn(store: Arc<dyn Store>, blobs: Weak<Blobs>, cfg: GcConfig) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no async runtime: ECR registry housekeeping is off");
        return;
    };
    rt.spawn(async move {
        loop {
            {
                let Some(b) = blobs.upgrade() else { return };
                tokio::select! {
                    _ = b.gc_wanted.notified() => {}
                    _ = tokio::time::sleep(cfg.interval) => {}
                }
            }
            let Some(b) = blobs.upgrade() else { return };
            let expired = expire_uploads(&b, cfg.upload_max_age).await;
            match collect(&*store, &b, cfg.grace).await {
                Ok(r) => tracing::debug!(?r, expired, "ECR registry housekeeping"),
                Err(e) => tracing::warn!(error = %e, "ECR garbage collection failed"),
            }
        }
    });
}
