//! A recording fake [`ApiClient`] for controller unit tests (style practice 8): an in-memory
//! object map with resourceVersion checks, `generateName`, and the ordered list of writes made.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use futures::StreamExt;
use serde_json::{Value, json};
use skiff_k8s_core::client::{
    ApiClient, DeleteOptions, DeleteOutcome, ListOptions, ObjectList, PatchOptions, ResourceRef,
    WatchEvent, WatchOptions, WatchStream, WriteOptions,
};
use skiff_k8s_core::patch::PatchType;
use skiff_k8s_core::selector::Selector;
use skiff_k8s_core::status::ApiError;

#[derive(Default)]
struct State {
    /// (group/resource, namespace/name) → object.
    objects: BTreeMap<(String, String), Value>,
    rv: u64,
    writes: Vec<String>,
    watches: VecDeque<Vec<WatchEvent>>,
    watch_calls: usize,
}

/// The fake. Writes are recorded as `"<verb> <resource> <namespace>/<name>"`.
#[derive(Default)]
pub struct FakeClient {
    state: Mutex<State>,
}

fn res(r: &ResourceRef) -> String {
    format!("{}/{}", r.group, r.resource)
}

fn obj_key(ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

fn name_of(o: &Value) -> String {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl FakeClient {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores an object without recording a write (the world before the reconcile). The
    /// namespace comes from the object, else from `r`.
    pub fn seed(&self, r: &ResourceRef, mut obj: Value) -> Value {
        let mut st = self.lock();
        st.rv += 1;
        let rv = st.rv;
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| r.namespace.clone());
        let m = &mut obj["metadata"];
        m["resourceVersion"] = json!(rv.to_string());
        if m.get("uid").is_none() {
            m["uid"] = json!(format!("uid-{rv}"));
        }
        if let Some(ns) = &ns {
            m["namespace"] = json!(ns);
        }
        let key = obj_key(ns.as_deref(), &name_of(&obj));
        st.objects.insert((res(r), key), obj.clone());
        obj
    }

    /// The writes made so far, in order.
    pub fn writes(&self) -> Vec<String> {
        self.lock().writes.clone()
    }

    /// A stored object by `namespace/name`.
    pub fn object(&self, r: &ResourceRef, key: &str) -> Option<Value> {
        self.lock().objects.get(&(res(r), key.to_string())).cloned()
    }

    /// Every stored object of a resource.
    pub fn objects(&self, r: &ResourceRef) -> Vec<Value> {
        let want = res(r);
        self.lock()
            .objects
            .iter()
            .filter(|((g, _), _)| *g == want)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The Events recorded so far as `(type, reason, message)`, oldest first, after letting the
    /// recorder's background writes run (it records off the reconcile's path).
    pub async fn events(&self) -> Vec<(String, String, String)> {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        let mut evs = self.objects(&ResourceRef::new("", "v1", "events"));
        // Names end in `.<hex nanoseconds + sequence>`: that orders them across objects.
        let order = |e: &Value| {
            e["metadata"]["name"]
                .as_str()
                .and_then(|n| n.rsplit_once('.'))
                .and_then(|(_, hex)| u128::from_str_radix(hex, 16).ok())
                .unwrap_or(0)
        };
        evs.sort_by_key(order);
        evs.iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (s("type"), s("reason"), s("message"))
            })
            .collect()
    }

    /// The next watch call plays these events and ends; without a script a watch stays open.
    pub fn script_watch(&self, events: Vec<WatchEvent>) {
        self.lock().watches.push_back(events);
    }

    pub fn watch_calls(&self) -> usize {
        self.lock().watch_calls
    }

    fn put(
        &self,
        r: &ResourceRef,
        mut obj: Value,
        verb: &str,
        must_exist: bool,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let name = name_of(&obj);
        let okey = obj_key(r.namespace.as_deref(), &name);
        let key = (res(r), okey.clone());
        let existing = st.objects.get(&key).cloned();
        match (&existing, must_exist) {
            (None, true) => return Err(ApiError::not_found(&r.group, &r.resource, &name)),
            (Some(_), false) => {
                return Err(ApiError::already_exists(&r.group, &r.resource, &name));
            }
            _ => {}
        }
        if let Some(old) = &existing {
            let given = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            let stored = old
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            if given.is_some_and(|g| !g.is_empty() && Some(g) != stored) {
                return Err(ApiError::optimistic_lock(&r.group, &r.resource, &name));
            }
            obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
        }
        st.rv += 1;
        let rv = st.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if obj["metadata"].get("uid").is_none() {
            obj["metadata"]["uid"] = json!(format!("uid-{rv}"));
        }
        if let Some(ns) = &r.namespace {
            obj["metadata"]["namespace"] = json!(ns);
        }
        st.writes.push(format!("{verb} {} {okey}", r.resource));
        st.objects.insert(key, obj.clone());
        Ok(obj)
    }
}

#[async_trait::async_trait]
impl ApiClient for FakeClient {
    async fn get(&self, r: &ResourceRef, name: &str) -> Result<Value, ApiError> {
        self.object(r, &obj_key(r.namespace.as_deref(), name))
            .ok_or_else(|| ApiError::not_found(&r.group, &r.resource, name))
    }

    async fn list(&self, r: &ResourceRef, opts: &ListOptions) -> Result<ObjectList, ApiError> {
        let sel = match opts.label_selector.as_deref() {
            None | Some("") => Selector::everything(),
            Some(s) => Selector::parse(s).map_err(ApiError::BadRequest)?,
        };
        let st = self.lock();
        let want = res(r);
        let prefix = r.namespace.as_ref().map(|ns| format!("{ns}/"));
        let items = st
            .objects
            .iter()
            .filter(|((g, k), v)| {
                *g == want
                    && prefix.as_ref().is_none_or(|p| k.starts_with(p))
                    && sel.matches_object(v)
            })
            .map(|(_, v)| v.clone())
            .collect();
        Ok(ObjectList {
            resource_version: st.rv.to_string(),
            continue_token: None,
            remaining_item_count: None,
            items,
        })
    }

    async fn create(
        &self,
        r: &ResourceRef,
        mut obj: Value,
        _: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if name_of(&obj).is_empty() {
            let base = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            // Deterministic suffixes so tests can name what was created.
            let n = self.lock().rv + 1;
            obj["metadata"]["name"] = json!(format!("{base}{n:05}"));
        }
        self.put(r, obj, "create", false)
    }

    async fn update(
        &self,
        r: &ResourceRef,
        obj: Value,
        _: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.put(r, obj, "update", true)
    }

    async fn update_status(
        &self,
        r: &ResourceRef,
        obj: Value,
        _: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.put(r, obj, "update_status", true)
    }

    async fn patch(
        &self,
        r: &ResourceRef,
        name: &str,
        pt: PatchType,
        patch: Value,
        opts: &PatchOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get(r, name).await?;
        let new = skiff_k8s_core::patch::apply_patch(&old, pt, &patch, &r.group, "")?;
        let verb = match &opts.subresource {
            Some(s) => format!("patch/{s}"),
            None => "patch".into(),
        };
        self.put(r, new, &verb, true)
    }

    async fn delete(
        &self,
        r: &ResourceRef,
        name: &str,
        _: &DeleteOptions,
    ) -> Result<DeleteOutcome, ApiError> {
        let mut st = self.lock();
        let okey = obj_key(r.namespace.as_deref(), name);
        let Some(old) = st.objects.remove(&(res(r), okey.clone())) else {
            return Err(ApiError::not_found(&r.group, &r.resource, name));
        };
        st.writes.push(format!("delete {} {okey}", r.resource));
        Ok(DeleteOutcome::Deleted(old))
    }

    async fn watch(&self, _: &ResourceRef, _: &WatchOptions) -> Result<WatchStream, ApiError> {
        let mut st = self.lock();
        st.watch_calls += 1;
        Ok(match st.watches.pop_front() {
            Some(events) => futures::stream::iter(events).boxed(),
            None => futures::stream::pending().boxed(),
        })
    }
}
