//! Garbage collector (kube-controller-manager's `garbagecollector`, living here until the
//! controllers crate exists), driven by one store watch over the cluster's keys:
//! - background: a dependent whose every ownerReference points to a gone owner is deleted;
//! - foreground: an owner marked with `foregroundDeletion` has its dependents deleted and keeps
//!   the finalizer until no dependent with `blockOwnerDeletion` remains;
//! - orphan: an owner marked with `orphan` has its references removed from dependents, then the
//!   finalizer removed.
//!
//! The graph (uid → object, owner uid → dependent uids) is in memory; owners are verified through
//! the registry before anything is deleted, so a stale graph can delay, never wrongly delete.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use skiff_k8s_core::status::ApiError;
use skiff_store::{EventKind, KeyValue};

use super::strategy::Strategy;
use super::write::{DeleteOptions, WriteOptions};
use super::{Registry, decode};

const MANAGER: &str = "generic-garbage-collector";

#[derive(Clone)]
struct Node {
    kind: Arc<dyn Strategy>,
    namespace: Option<String>,
    name: String,
    /// (owner uid, apiVersion, kind, name, blockOwnerDeletion)
    owners: Vec<(String, String, String, String, bool)>,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn remove(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        for (o, ..) in &node.owners {
            if let Some(d) = self.dependents.get_mut(o) {
                d.remove(uid);
                if d.is_empty() {
                    self.dependents.remove(o);
                }
            }
        }
        Some(node)
    }

    fn insert(&mut self, uid: String, node: Node) {
        self.remove(&uid);
        for (o, ..) in &node.owners {
            self.dependents
                .entry(o.clone())
                .or_default()
                .insert(uid.clone());
        }
        self.nodes.insert(uid, node);
    }
}

fn owners_of(obj: &Value) -> Vec<(String, String, String, String, bool)> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    let s = |k: &str| {
                        r.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    let block = r
                        .get("blockOwnerDeletion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    (s("uid"), s("apiVersion"), s("kind"), s("name"), block)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn uid_of(obj: &Value) -> String {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The collector of one cluster.
pub struct GarbageCollector {
    reg: Arc<Registry>,
    graph: Graph,
    /// Owners to look at again: being deleted in foreground/orphan mode, or just deleted.
    dirty_owners: BTreeSet<String>,
    /// Dependents to check for absent owners.
    dirty_dependents: BTreeSet<String>,
}

impl GarbageCollector {
    pub fn new(reg: Arc<Registry>) -> Self {
        Self {
            reg,
            graph: Graph::default(),
            dirty_owners: BTreeSet::new(),
            dirty_dependents: BTreeSet::new(),
        }
    }

    /// The strategy and namespace of a stored key (`<prefix><group>/<plural>/[<ns>/]<name>`).
    fn locate(&self, key: &str) -> Option<(Arc<dyn Strategy>, Option<String>, String)> {
        let rest = key.strip_prefix(self.reg.cluster_prefix())?;
        let mut parts = rest.splitn(3, '/');
        let group = parts.next()?;
        let plural = parts.next()?;
        let tail = parts.next()?;
        let group = if group == "core" { "" } else { group };
        let kind = self.reg.kind(group, plural)?;
        if kind.info().namespaced {
            let (ns, name) = tail.split_once('/')?;
            Some((kind, Some(ns.to_string()), name.to_string()))
        } else {
            Some((kind, None, tail.to_string()))
        }
    }

    fn observe_put(&mut self, kv: &KeyValue) {
        let Some((kind, namespace, name)) = self.locate(&kv.key) else {
            return;
        };
        let Ok(obj) = decode(kv) else { return };
        let uid = uid_of(&obj);
        if uid.is_empty() {
            return;
        }
        let owners = owners_of(&obj);
        let has_owners = !owners.is_empty();
        self.graph.insert(
            uid.clone(),
            Node {
                kind,
                namespace,
                name,
                owners,
            },
        );
        let finalizers = super::meta::finalizers(&obj);
        if obj.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers
                .iter()
                .any(|f| f == "foregroundDeletion" || f == "orphan")
        {
            self.dirty_owners.insert(uid.clone());
        }
        if has_owners {
            self.dirty_dependents.insert(uid);
        }
    }

    fn observe_delete(&mut self, prev: &KeyValue) {
        let Ok(obj) = decode(prev) else { return };
        let uid = uid_of(&obj);
        if let Some(node) = self.graph.remove(&uid) {
            // Owners waiting in foreground mode may now be unblocked.
            for (o, ..) in node.owners {
                self.dirty_owners.insert(o);
            }
        }
        if let Some(deps) = self.graph.dependents.get(&uid) {
            self.dirty_dependents.extend(deps.iter().cloned());
        }
    }

    /// Is the owner of this reference still there (same uid)?
    async fn owner_exists(
        &self,
        dep: &Node,
        owner: &(String, String, String, String, bool),
    ) -> Result<bool, ApiError> {
        let (uid, av, kind, name, _) = owner;
        let Some(k) = self.reg.kind_of(av, kind) else {
            // Unknown kind: we cannot prove it absent.
            return Ok(true);
        };
        let ns = if k.info().namespaced {
            dep.namespace.as_deref()
        } else {
            None
        };
        match self.reg.get(&k, ns, name).await {
            Ok(o) => Ok(uid_of(&o) == *uid),
            Err(ApiError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn process_dependent(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(node) = self.graph.nodes.get(uid).cloned() else {
            return Ok(());
        };
        if node.owners.is_empty() {
            return Ok(());
        }
        for o in &node.owners {
            if self.owner_exists(&node, o).await? {
                return Ok(());
            }
        }
        let opts = DeleteOptions {
            precondition_uid: Some(uid.to_string()),
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        match self
            .reg
            .delete(&node.kind, node.namespace.as_deref(), &node.name, &opts)
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn process_owner(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(node) = self.graph.nodes.get(uid).cloned() else {
            return Ok(());
        };
        let owner = match self
            .reg
            .get(&node.kind, node.namespace.as_deref(), &node.name)
            .await
        {
            Ok(o) if uid_of(&o) == uid => o,
            Ok(_) | Err(ApiError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if owner.pointer("/metadata/deletionTimestamp").is_none() {
            return Ok(());
        }
        let finalizers = super::meta::finalizers(&owner);
        let deps: Vec<String> = self
            .graph
            .dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default();
        let opts = WriteOptions {
            field_manager: MANAGER.into(),
            ..Default::default()
        };
        if finalizers.iter().any(|f| f == "orphan") {
            for d in &deps {
                let Some(dn) = self.graph.nodes.get(d).cloned() else {
                    continue;
                };
                let owner_uid = uid.to_string();
                let r = self
                    .reg
                    .update_with(
                        &dn.kind,
                        dn.namespace.as_deref(),
                        &dn.name,
                        "",
                        &opts,
                        |cur| {
                            let mut o = cur.clone();
                            if let Some(refs) = o
                                .pointer_mut("/metadata/ownerReferences")
                                .and_then(Value::as_array_mut)
                            {
                                refs.retain(|r| {
                                    r.get("uid").and_then(Value::as_str) != Some(owner_uid.as_str())
                                });
                                if refs.is_empty()
                                    && let Some(m) =
                                        o.get_mut("metadata").and_then(Value::as_object_mut)
                                {
                                    m.remove("ownerReferences");
                                }
                            }
                            Ok(o)
                        },
                    )
                    .await;
                match r {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            return self.remove_finalizer(&node, uid, "orphan").await;
        }
        if finalizers.iter().any(|f| f == "foregroundDeletion") {
            let mut blocking = 0;
            for d in &deps {
                let Some(dn) = self.graph.nodes.get(d).cloned() else {
                    continue;
                };
                if dn.owners.iter().any(|o| o.0 == uid && o.4) {
                    blocking += 1;
                }
                let opts = DeleteOptions {
                    precondition_uid: Some(d.clone()),
                    propagation_policy: Some("Foreground".into()),
                    ..Default::default()
                };
                match self
                    .reg
                    .delete(&dn.kind, dn.namespace.as_deref(), &dn.name, &opts)
                    .await
                {
                    Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if blocking == 0 {
                return self
                    .remove_finalizer(&node, uid, "foregroundDeletion")
                    .await;
            }
        }
        Ok(())
    }

    async fn remove_finalizer(
        &self,
        node: &Node,
        uid: &str,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        let opts = WriteOptions {
            field_manager: MANAGER.into(),
            ..Default::default()
        };
        let r = self
            .reg
            .update_with(
                &node.kind,
                node.namespace.as_deref(),
                &node.name,
                "",
                &opts,
                |cur| {
                    if uid_of(cur) != uid {
                        return Err(ApiError::not_found("", "", ""));
                    }
                    let mut o = cur.clone();
                    let mut f = super::meta::finalizers(&o);
                    f.retain(|x| x != finalizer);
                    super::meta::set_finalizers(&mut o, &f);
                    Ok(o)
                },
            )
            .await;
        match r {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn drain(&mut self) {
        let owners: Vec<String> = std::mem::take(&mut self.dirty_owners).into_iter().collect();
        for uid in owners {
            if let Err(e) = self.process_owner(&uid).await {
                tracing::warn!(%uid, error = %e, "garbage collector: owner");
                self.dirty_owners.insert(uid);
            }
        }
        let deps: Vec<String> = std::mem::take(&mut self.dirty_dependents)
            .into_iter()
            .collect();
        for uid in deps {
            if let Err(e) = self.process_dependent(&uid).await {
                tracing::warn!(%uid, error = %e, "garbage collector: dependent");
                self.dirty_dependents.insert(uid);
            }
        }
    }

    /// Lists the cluster's keys, then follows the watch until `shutdown` flips; relists when the
    /// watch is cut off.
    pub fn spawn(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let prefix = self.reg.cluster_prefix().to_string();
                let store = self.reg.store().clone();
                // Initial list, page by page, at one revision.
                let mut rev = None;
                let mut start_after = None;
                self.graph = Graph::default();
                let listed = loop {
                    match store
                        .list(
                            &prefix,
                            skiff_store::ListOptions {
                                at_revision: rev,
                                start_after: start_after.clone(),
                                limit: 1000,
                            },
                        )
                        .await
                    {
                        Ok(page) => {
                            rev = Some(page.revision);
                            for kv in &page.items {
                                self.observe_put(kv);
                            }
                            start_after = page.items.last().map(|kv| kv.key.clone());
                            if !page.more {
                                break true;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "garbage collector: list failed");
                            break false;
                        }
                    }
                };
                if !listed {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
                let Ok(mut events) = store.watch(&prefix, rev.unwrap_or(0)).await else {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                };
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        ev = events.next() => match ev {
                            Some(Ok(ev)) => match ev.kind {
                                EventKind::Put => self.observe_put(&ev.kv),
                                EventKind::Delete => if let Some(p) = &ev.prev { self.observe_delete(p) },
                            },
                            _ => break,
                        },
                        _ = tick.tick() => {}
                    }
                    // Handle what is queued once the burst of events is read.
                    if events.size_hint().0 == 0 {
                        self.drain().await;
                    }
                }
            }
        })
    }
}
