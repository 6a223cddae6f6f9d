//! Server-side apply and managed-fields tracking (`metadata.managedFields`), after
//! sigs.k8s.io/structured-merge-diff and apiserver's `fieldmanager`, over JSON values.
//!
//! A field set is the set of paths a manager owns, encoded in `fieldsV1` as nested objects keyed
//! `f:<field>`, `k:{"name":"x"}` (associative-list item), `v:"x"` (set element) and `i:<n>`, with
//! `".": {}` marking a node that is itself owned and has owned children.
//!
//! What counts as a field comes from [`crate::patch_meta`]: lists with a merge key are associative
//! (items owned one by one), `merge` scalar lists are sets, everything else is atomic (owned and
//! replaced as one value). Owned paths are the leaves (scalars, atomic values, empty maps) plus
//! list items, which is what upstream records for structs. Upstream's extra `"."` markers on
//! map-typed fields (`labels`) are not reproduced; our own reads and writes agree with each other.
//!
//! - [`apply`]: merge an apply configuration into the live object for a manager, refusing changes
//!   to fields other managers own (409 naming them, as kubectl shows) unless `force`, and removing
//!   fields the manager applied last time and no longer applies, unless someone else owns them.
//! - [`track_update`]: after a create/update/patch, give the writing manager the fields it changed
//!   and take them from the others (an `Update` entry).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value, json};

use crate::patch_meta::{EMPTY, Schema, Strategy};
use crate::status::{ApiError, go_quote};

/// One step of a field path (`fieldpath.PathElement`). Ordered as upstream: fields, keys, values,
/// indexes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    Field(String),
    /// Key field names with their values as compact JSON, sorted by name.
    Key(Vec<(String, String)>),
    /// A set element as compact JSON.
    Value(String),
    Index(usize),
}

impl PathElement {
    fn encode(&self) -> String {
        match self {
            Self::Field(f) => format!("f:{f}"),
            Self::Key(kv) => {
                let inner: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                    .collect();
                format!("k:{{{}}}", inner.join(","))
            }
            Self::Value(v) => format!("v:{v}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        let (tag, rest) = s.split_at_checked(2)?;
        match tag {
            "f:" => Some(Self::Field(rest.to_string())),
            "v:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                Some(Self::Value(v.to_string()))
            }
            "i:" => rest.parse().ok().map(Self::Index),
            "k:" => {
                let Value::Object(m) = serde_json::from_str(rest).ok()? else {
                    return None;
                };
                let mut kv: Vec<(String, String)> =
                    m.into_iter().map(|(k, v)| (k, v.to_string())).collect();
                kv.sort();
                Some(Self::Key(kv))
            }
            _ => None,
        }
    }

    /// Whether a list element is the one this step names.
    fn matches_item(&self, item: &Value, pos: usize) -> bool {
        match self {
            Self::Key(kv) => kv
                .iter()
                .all(|(k, v)| item.get(k).is_some_and(|x| json_is(x, v))),
            Self::Value(v) => json_is(item, v),
            Self::Index(i) => *i == pos,
            Self::Field(_) => false,
        }
    }
}

impl fmt::Display for PathElement {
    /// `PathElement.String()`: `.spec`, `[name="nginx"]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(n) => write!(f, ".{n}"),
            Self::Key(kv) => {
                let inner: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", inner.join(","))
            }
            Self::Value(v) => write!(f, "[={v}]"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Whether `x` serialises to the compact JSON `json` (how keys and set values are stored).
fn json_is(x: &Value, json: &str) -> bool {
    serde_json::to_string(x).is_ok_and(|s| s == json)
}

/// A field path.
pub type Path = Vec<PathElement>;

/// Renders a path as upstream (`.spec.containers[name="a"].image`).
pub fn path_string(p: &[PathElement]) -> String {
    p.iter().map(ToString::to_string).collect()
}

/// A set of owned paths (`fieldpath.Set`, members only; children are implied by longer paths).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[doc(alias = "fieldpath.Set")]
pub struct FieldSet(pub BTreeSet<Path>);

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn contains(&self, p: &Path) -> bool {
        self.0.contains(p)
    }
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }
    /// Whether some member equals `p` or lies below it.
    fn covers_or_below(&self, p: &[PathElement]) -> bool {
        self.0.iter().any(|m| m.starts_with(p))
    }

    /// Decodes a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        fn walk(v: &Value, prefix: &mut Path, set: &mut BTreeSet<Path>) -> Result<(), String> {
            let Value::Object(m) = v else {
                return Err("fieldsV1 nodes must be objects".into());
            };
            if m.is_empty() && !prefix.is_empty() {
                set.insert(prefix.clone());
            }
            for (k, child) in m {
                if k == "." {
                    set.insert(prefix.clone());
                    continue;
                }
                let pe = PathElement::decode(k)
                    .ok_or_else(|| format!("invalid fieldsV1 key {}", go_quote(k)))?;
                prefix.push(pe);
                walk(child, prefix, set)?;
                prefix.pop();
            }
            Ok(())
        }
        walk(v, &mut Vec::new(), &mut set)?;
        Ok(Self(set))
    }

    /// Encodes as `fieldsV1`.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<PathElement, Node>,
        }
        let mut root = Node::default();
        for p in &self.0 {
            let mut n = &mut root;
            for pe in p {
                n = n.children.entry(pe.clone()).or_default();
            }
            n.member = true;
        }
        fn emit(n: &Node) -> Value {
            let mut m = Map::new();
            if n.member && !n.children.is_empty() {
                m.insert(".".into(), json!({}));
            }
            for (pe, c) in &n.children {
                m.insert(pe.encode(), emit(c));
            }
            Value::Object(m)
        }
        emit(&root)
    }
}

/// Top-level paths upstream never tracks (`stripMetaManager`).
fn stripped(p: &[PathElement]) -> bool {
    let f = |i: usize| match p.get(i) {
        Some(PathElement::Field(s)) => Some(s.as_str()),
        _ => None,
    };
    match (f(0), p.len()) {
        (Some("apiVersion" | "kind"), 1) => true,
        (Some("metadata"), 1) => true,
        (Some("metadata"), 2) => matches!(
            f(1),
            Some(
                "name"
                    | "namespace"
                    | "creationTimestamp"
                    | "selfLink"
                    | "uid"
                    | "clusterName"
                    | "generation"
                    | "managedFields"
                    | "resourceVersion"
            )
        ),
        _ => false,
    }
}

fn is_atomic(s: Strategy) -> bool {
    matches!(s, Strategy::AtomicStruct | Strategy::Replace)
}

/// The key step of an associative-list item; `Err(field)` when the primary key is missing.
fn item_key(item: &Value, map_keys: &[&str]) -> Result<PathElement, String> {
    let mut kv = Vec::new();
    for (i, k) in map_keys.iter().enumerate() {
        match item.get(*k) {
            Some(v) if !v.is_null() => kv.push((k.to_string(), v.to_string())),
            // Secondary keys have defaults upstream (`protocol: TCP`); the first one must be set.
            _ if i > 0 => {}
            _ => return Err(k.to_string()),
        }
    }
    kv.sort();
    Ok(PathElement::Key(kv))
}

/// Collects the owned paths of `v` (`TypedValue.ToFieldSet`).
fn collect(
    v: &Value,
    schema: &'static Schema,
    prefix: &mut Path,
    out: &mut BTreeSet<Path>,
) -> Result<(), String> {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let (strategy, sub) = schema.field(k);
                prefix.push(PathElement::Field(k.clone()));
                collect_field(child, strategy, sub.unwrap_or(&EMPTY), prefix, out)?;
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
    Ok(())
}

fn collect_field(
    v: &Value,
    strategy: Strategy,
    sub: &'static Schema,
    prefix: &mut Path,
    out: &mut BTreeSet<Path>,
) -> Result<(), String> {
    match (v, strategy) {
        (Value::Array(items), Strategy::MergeByKey { map_keys, .. }) => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = item_key(item, map_keys).map_err(|k| {
                    format!(
                        "{}: element {i}: associative list with keys has an element that omits key field {} (and doesn't have default value)",
                        path_string(prefix),
                        go_quote(&k)
                    )
                })?;
                if !seen.insert(pe.clone()) {
                    return Err(format!(
                        "{}: duplicate entries for key {pe}",
                        path_string(prefix)
                    ));
                }
                prefix.push(pe);
                out.insert(prefix.clone());
                if let Value::Object(m) = item {
                    for (k, child) in m {
                        let (s, sub2) = sub.field(k);
                        prefix.push(PathElement::Field(k.clone()));
                        collect_field(child, s, sub2.unwrap_or(&EMPTY), prefix, out)?;
                        prefix.pop();
                    }
                }
                prefix.pop();
            }
        }
        (Value::Array(items), Strategy::MergePrimitive) => {
            for item in items {
                prefix.push(PathElement::Value(item.to_string()));
                out.insert(prefix.clone());
                prefix.pop();
            }
        }
        (Value::Object(_), s) if is_atomic(s) => {
            out.insert(prefix.clone());
        }
        (Value::Object(_), _) => collect(v, sub, prefix, out)?,
        _ => {
            out.insert(prefix.clone());
        }
    }
    Ok(())
}

/// The field set of an object or apply configuration, minus the fields upstream never tracks and
/// the top-level fields in `reset` (`status` on the main resource, `spec` on `/status`).
pub fn field_set(obj: &Value, schema: &'static Schema, reset: &[&str]) -> Result<FieldSet, String> {
    let mut out = BTreeSet::new();
    collect(obj, schema, &mut Vec::new(), &mut out)?;
    out.retain(|p| {
        !p.is_empty()
            && !stripped(p)
            && !matches!(&p[0], PathElement::Field(f) if reset.contains(&f.as_str()))
    });
    Ok(FieldSet(out))
}

/// The value at `path`, if present.
fn get<'a>(v: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in path {
        cur = match (pe, cur) {
            (PathElement::Field(f), Value::Object(m)) => m.get(f)?,
            (_, Value::Array(a)) => {
                a.iter()
                    .enumerate()
                    .find(|(i, x)| pe.matches_item(x, *i))?
                    .1
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the value at `path`, if present.
fn remove(v: &mut Value, path: &[PathElement]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for pe in parent {
        let next = match (pe, cur) {
            (PathElement::Field(f), Value::Object(m)) => m.get_mut(f),
            (_, Value::Array(a)) => a
                .iter_mut()
                .enumerate()
                .find(|(i, x)| pe.matches_item(x, *i))
                .map(|(_, x)| x),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (last, cur) {
        (PathElement::Field(f), Value::Object(m)) => {
            m.shift_remove(f);
        }
        (_, Value::Array(a)) => {
            let mut i = 0;
            a.retain(|x| {
                let keep = !last.matches_item(x, i);
                i += 1;
                keep
            });
        }
        _ => {}
    }
}

/// `live.Merge(config)`: config values win; associative lists merge by key (live order kept, new
/// items appended), sets are unions, atomic values are replaced; `null` removes.
fn merge(live: &mut Value, cfg: &Value, schema: &'static Schema) {
    let (Value::Object(l), Value::Object(c)) = (&mut *live, cfg) else {
        *live = strip_nulls(cfg);
        return;
    };
    for (k, cv) in c {
        if cv.is_null() {
            l.shift_remove(k);
            continue;
        }
        let (strategy, sub) = schema.field(k);
        let sub = sub.unwrap_or(&EMPTY);
        match l.get_mut(k) {
            Some(lv) => merge_field(lv, cv, strategy, sub),
            None => {
                l.insert(k.clone(), strip_nulls(cv));
            }
        }
    }
}

fn merge_field(lv: &mut Value, cv: &Value, strategy: Strategy, sub: &'static Schema) {
    match (&mut *lv, cv, strategy) {
        (Value::Array(la), Value::Array(ca), Strategy::MergeByKey { map_keys, .. }) => {
            for item in ca {
                let Ok(key) = item_key(item, map_keys) else {
                    continue;
                };
                match la
                    .iter_mut()
                    .enumerate()
                    .find(|(i, x)| key.matches_item(x, *i))
                {
                    Some((_, existing)) => merge(existing, item, sub),
                    None => la.push(strip_nulls(item)),
                }
            }
        }
        (Value::Array(la), Value::Array(ca), Strategy::MergePrimitive) => {
            for item in ca {
                if !la.contains(item) {
                    la.push(item.clone());
                }
            }
        }
        (Value::Object(_), Value::Object(_), s) if !is_atomic(s) => merge(lv, cv, sub),
        _ => *lv = strip_nulls(cv),
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
#[doc(alias = "ManagedFieldsEntry")]
pub struct ManagedEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_manager(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// `printManager`: `"kubectl-client-side-apply" using apps/v1`, `"kubectl"` for appliers.
    fn describe(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {}", go_quote(&self.subresource));
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.clone().into());
        m.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(t) = &self.time {
            m.insert("time".into(), t.clone().into());
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(m)
    }
}

/// Reads `metadata.managedFields`; a malformed list is a 400, as upstream's decoder answers.
pub fn managed_fields(obj: &Value) -> Result<Vec<ManagedEntry>, ApiError> {
    let Some(list) = obj.pointer("/metadata/managedFields") else {
        return Ok(Vec::new());
    };
    let list = match list {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => {
            return Err(ApiError::BadRequest(
                "metadata.managedFields must be a list".into(),
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let s = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let fields = match e.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::default(),
            Some(v) => FieldSet::from_fields_v1(v).map_err(ApiError::BadRequest)?,
        };
        out.push(ManagedEntry {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: e.get("time").and_then(Value::as_str).map(String::from),
            subresource: s("subresource"),
            fields,
        });
    }
    Ok(out)
}

/// Writes `metadata.managedFields`, sorted as upstream (operation, time, manager, version,
/// subresource) and without empty entries.
fn set_managed_fields(obj: &mut Value, mut entries: Vec<ManagedEntry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Value::Object(root) = obj else { return };
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        if entries.is_empty() {
            m.shift_remove("managedFields");
        } else {
            m.insert(
                "managedFields".into(),
                Value::Array(entries.iter().map(ManagedEntry::to_json).collect()),
            );
        }
    }
}

/// Who is writing, and how.
#[derive(Clone, Debug)]
pub struct ManagerInfo<'a> {
    /// `fieldManager` (kubectl: `kubectl`, `kubectl-client-side-apply`, …).
    pub manager: &'a str,
    /// The `apiVersion` of the request (`apps/v1`).
    pub api_version: &'a str,
    /// `""` for the main resource, `status`, `scale`, ….
    pub subresource: &'a str,
    /// Top-level fields this endpoint resets and so never owns (`status` on the main resource of
    /// kinds with a status subresource; everything but `status` on `/status`).
    pub reset_fields: &'a [&'a str],
    /// The write time.
    pub now: jiff::Timestamp,
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Leaf paths whose value differs between `old` and `new`, or that `new` adds (`Compare` →
/// Modified ∪ Added), limited to `candidates`.
fn changed(old: &Value, new: &Value, candidates: &FieldSet) -> BTreeSet<Path> {
    candidates
        .paths()
        .filter(|p| match (get(old, p), get(new, p)) {
            (None, Some(_)) => true,
            // List items and set elements are identified by their key; their fields are separate paths.
            (Some(_), Some(_))
                if matches!(p.last(), Some(PathElement::Key(_) | PathElement::Value(_))) =>
            {
                false
            }
            (Some(a), Some(b)) => a != b,
            _ => false,
        })
        .cloned()
        .collect()
}

/// Paths of `old_set` whose value `new` no longer has (`Compare` → Removed).
fn removed(new: &Value, set: &FieldSet) -> BTreeSet<Path> {
    set.paths()
        .filter(|p| get(new, p).is_none())
        .cloned()
        .collect()
}

/// Server-side apply of `config` onto `live` (`None` to create) for `who`. Returns the new
/// object with `metadata.managedFields` updated.
///
/// Errors: 400 for a config carrying `managedFields` or a malformed associative list; 409
/// [`ApiError::ApplyConflict`] when, without `force`, the config changes fields owned by others.
#[doc(alias = "ServerSideApply")]
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    schema: Option<&'static Schema>,
    who: &ManagerInfo<'_>,
    force: bool,
) -> Result<Value, ApiError> {
    let schema = schema.unwrap_or(&EMPTY);
    if !config.is_object() {
        return Err(ApiError::BadRequest(
            "apply configuration must be an object".into(),
        ));
    }
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let empty = json!({});
    let live = live.unwrap_or(&empty);
    let mut managers = managed_fields(live)?;
    let new_set = field_set(config, schema, who.reset_fields).map_err(|e| {
        ApiError::BadRequest(format!(
            "failed to create typed patch object ({}): {e}",
            gvk_nn(config)
        ))
    })?;

    let mut merged = live.clone();
    let mut cfg = config.clone();
    if let Value::Object(c) = &mut cfg {
        for f in who.reset_fields {
            c.shift_remove(*f);
        }
    }
    merge(&mut merged, &cfg, schema);

    // Prune what this manager applied last time and no longer applies, unless others own it.
    let me = managers
        .iter()
        .position(|e| e.same_manager(who.manager, "Apply", who.subresource));
    if let Some(i) = me {
        let others: Vec<&FieldSet> = managers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| &e.fields)
            .collect();
        let dropped: Vec<Path> = managers[i]
            .fields
            .paths()
            .filter(|p| !new_set.covers_or_below(p) && !others.iter().any(|o| o.covers_or_below(p)))
            .cloned()
            .collect();
        // Parents before children: a removed list item can no longer be found by its key fields.
        for p in &dropped {
            remove(&mut merged, p);
        }
    }

    // Conflicts: fields this apply changes that another manager owns.
    let touched = changed(live, &merged, &new_set);
    let mut conflicts: Vec<(usize, Vec<Path>)> = Vec::new();
    for (i, e) in managers.iter().enumerate() {
        if Some(i) == me {
            continue;
        }
        let c: Vec<Path> = e
            .fields
            .paths()
            .filter(|p| touched.contains(*p))
            .cloned()
            .collect();
        if !c.is_empty() {
            conflicts.push((i, c));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&managers, &conflicts));
    }
    let gone = removed(
        &merged,
        &FieldSet(
            managers
                .iter()
                .flat_map(|e| e.fields.0.iter().cloned())
                .collect(),
        ),
    );
    for (i, c) in &conflicts {
        for p in c {
            managers[*i].fields.0.remove(p);
        }
    }
    for e in managers.iter_mut() {
        e.fields.0.retain(|p| !gone.contains(p));
    }
    let entry = ManagedEntry {
        manager: who.manager.into(),
        operation: "Apply".into(),
        api_version: who.api_version.into(),
        time: Some(rfc3339(who.now)),
        subresource: who.subresource.into(),
        fields: new_set,
    };
    match me {
        Some(i) => {
            // Keep the old timestamp when nothing changed, as upstream does for no-op applies.
            let unchanged = managers[i].fields == entry.fields && live == &merged;
            let time = if unchanged {
                managers[i].time.clone()
            } else {
                entry.time.clone()
            };
            managers[i] = ManagedEntry { time, ..entry };
        }
        None => managers.push(entry),
    }
    set_managed_fields(&mut merged, managers);
    Ok(merged)
}

/// `objectGVKNN`: `apps/v1, Kind=Deployment; default/web` (`/v1, Kind=Pod; …` for the core group).
fn gvk_nn(obj: &Value) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let av = s("/apiVersion");
    let gv = if av.contains('/') {
        av.to_string()
    } else {
        format!("/{av}")
    };
    format!(
        "{gv}, Kind={}; {}/{}",
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name")
    )
}

/// The 409 for apply conflicts, worded as apiserver's `NewConflictError`.
fn conflict_error(managers: &[ManagedEntry], conflicts: &[(usize, Vec<Path>)]) -> ApiError {
    let total: usize = conflicts.iter().map(|(_, c)| c.len()).sum();
    let mut causes = Vec::new();
    for (i, paths) in conflicts {
        for p in paths {
            causes.push((
                format!("conflict with {}", managers[*i].describe()),
                path_string(p),
            ));
        }
    }
    let message = if total == 1 {
        let (i, paths) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            managers[*i].describe(),
            path_string(&paths[0])
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, paths) in conflicts {
            by_manager
                .entry(managers[*i].describe())
                .or_default()
                .extend(paths.iter().map(|p| path_string(p)));
        }
        let mut lines = Vec::new();
        for (m, paths) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!("Apply failed with {total} conflicts: {}", lines.join("\n"))
    };
    ApiError::ApplyConflict { message, causes }
}

/// Records a non-apply write (create, update, JSON/merge/strategic patch) by `who`: the manager's
/// `Update` entry gains the fields it added or changed and loses those it removed; other managers
/// lose changed and removed fields. Returns `new` with `metadata.managedFields` rewritten; the
/// client-sent `managedFields` of `new` are ignored in favour of `live`'s. Call it with `new` as
/// it will be stored (status already carried over from `live` on the main resource), or owners of
/// the fields it lacks lose them.
#[doc(alias = "UpdateManagedFields")]
pub fn track_update(
    live: Option<&Value>,
    mut new: Value,
    schema: Option<&'static Schema>,
    who: &ManagerInfo<'_>,
) -> Result<Value, ApiError> {
    let schema = schema.unwrap_or(&EMPTY);
    let empty = json!({});
    let live = live.unwrap_or(&empty);
    let mut managers = managed_fields(live)?;
    let new_set = field_set(&new, schema, who.reset_fields).map_err(ApiError::BadRequest)?;
    let touched = changed(live, &new, &new_set);
    let all: FieldSet = FieldSet(
        managers
            .iter()
            .flat_map(|e| e.fields.0.iter().cloned())
            .collect(),
    );
    let gone = removed(&new, &all);
    for e in managers.iter_mut() {
        e.fields
            .0
            .retain(|p| !touched.contains(p) && !gone.contains(p));
    }
    if !touched.is_empty() {
        let time = Some(rfc3339(who.now));
        match managers.iter_mut().find(|e| {
            e.same_manager(who.manager, "Update", who.subresource)
                && e.api_version == who.api_version
        }) {
            Some(e) => {
                e.fields.0.extend(touched);
                e.time = time;
            }
            None => managers.push(ManagedEntry {
                manager: who.manager.into(),
                operation: "Update".into(),
                api_version: who.api_version.into(),
                time,
                subresource: who.subresource.into(),
                fields: FieldSet(touched),
            }),
        }
    }
    if let Value::Object(m) = &mut new
        && let Some(Value::Object(meta)) = m.get_mut("metadata")
    {
        meta.shift_remove("managedFields");
    }
    set_managed_fields(&mut new, managers);
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch_meta::schema_for;

    fn who<'a>(manager: &'a str) -> ManagerInfo<'a> {
        ManagerInfo {
            manager,
            api_version: "apps/v1",
            subresource: "",
            reset_fields: &["status"],
            now: "2026-11-23T13:00:00Z".parse().unwrap(),
        }
    }

    fn dep(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                ]}}
            }
        })
    }

    fn deploy_schema() -> Option<&'static Schema> {
        schema_for("apps", "Deployment")
    }

    #[test]
    fn fields_v1_encoding_round_trips() {
        let set = field_set(&dep(1, "nginx:1"), deploy_schema().unwrap(), &["status"]).unwrap();
        let v = set.to_fields_v1();
        assert_eq!(
            v,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&v).unwrap(), set);
        let fin = field_set(
            &json!({"metadata": {"finalizers": ["a"]}}),
            schema_for("", "Pod").unwrap(),
            &[],
        )
        .unwrap();
        assert_eq!(
            fin.to_fields_v1(),
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}}})
        );
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
    }

    #[test]
    fn path_strings_match_upstream() {
        let p = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(vec![("name".into(), "\"nginx\"".into())]),
            PathElement::Field("image".into()),
        ];
        assert_eq!(path_string(&p), ".spec.containers[name=\"nginx\"].image");
        assert_eq!(
            path_string(&[PathElement::Value("\"a\"".into()), PathElement::Index(2)]),
            "[=\"a\"][2]"
        );
    }

    #[test]
    fn create_then_reapply_prunes_dropped_fields() {
        let w = who("kubectl");
        let mut cfg = dep(2, "nginx:1");
        cfg["metadata"]["labels"]["tier"] = json!("fe");
        let created = apply(None, &cfg, deploy_schema(), &w, false).unwrap();
        assert_eq!(created["spec"]["replicas"], 2);
        let mf = managed_fields(&created).unwrap();
        assert_eq!(mf.len(), 1);
        assert_eq!(
            (mf[0].manager.as_str(), mf[0].operation.as_str()),
            ("kubectl", "Apply")
        );
        assert_eq!(
            created["metadata"]["managedFields"][0]["time"],
            "2026-11-23T13:00:00Z"
        );
        assert_eq!(
            created["metadata"]["managedFields"][0]["fieldsType"],
            "FieldsV1"
        );
        // Re-apply without the `tier` label: it is removed, as it is owned by no one else.
        let again = apply(
            Some(&created),
            &dep(2, "nginx:2"),
            deploy_schema(),
            &w,
            false,
        )
        .unwrap();
        assert_eq!(again["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            again["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
    }

    #[test]
    fn conflicts_with_other_managers_and_force() {
        let created = apply(
            None,
            &dep(1, "nginx:1"),
            deploy_schema(),
            &who("kubectl"),
            false,
        )
        .unwrap();
        // Another manager changes replicas with an update: it now owns `.spec.replicas`.
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(5);
        let scaled = track_update(
            Some(&created),
            scaled,
            deploy_schema(),
            &who("kubectl-client-side-apply"),
        )
        .unwrap();
        let mf = managed_fields(&scaled).unwrap();
        let upd = mf.iter().find(|e| e.operation == "Update").unwrap();
        assert_eq!(
            upd.fields.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}}})
        );
        let appl = mf.iter().find(|e| e.operation == "Apply").unwrap();
        assert!(
            !appl.fields.to_fields_v1()["f:spec"]
                .as_object()
                .unwrap()
                .contains_key("f:replicas")
        );

        // Applying replicas again by another applier conflicts.
        let err = apply(
            Some(&scaled),
            &dep(3, "nginx:1"),
            deploy_schema(),
            &who("other"),
            false,
        )
        .unwrap_err();
        assert_eq!(err.code(), 409);
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        let s = err.to_status();
        assert_eq!(s["reason"], "Conflict");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using apps/v1", "field": ".spec.replicas"})
        );
        // Applying the same value is shared ownership, not a conflict.
        let shared = apply(
            Some(&scaled),
            &dep(5, "nginx:1"),
            deploy_schema(),
            &who("other"),
            false,
        )
        .unwrap();
        assert_eq!(shared["spec"]["replicas"], 5);
        // Force takes ownership.
        let forced = apply(
            Some(&scaled),
            &dep(3, "nginx:1"),
            deploy_schema(),
            &who("other"),
            true,
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let mf = managed_fields(&forced).unwrap();
        assert!(
            mf.iter().all(|e| e.operation != "Update"),
            "the updater lost its only field: {mf:?}"
        );
    }

    #[test]
    fn many_conflicts_are_grouped_by_manager() {
        let created = apply(None, &dep(1, "nginx:1"), deploy_schema(), &who("a"), false).unwrap();
        let err = apply(
            Some(&created),
            &dep(2, "nginx:2"),
            deploy_schema(),
            &who("b"),
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
        );
    }

    #[test]
    fn fields_owned_by_others_survive_pruning() {
        let w = who("kubectl");
        let created = apply(None, &dep(1, "nginx:1"), deploy_schema(), &w, false).unwrap();
        // A second applier co-owns the container image.
        let co = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}}});
        let both = apply(Some(&created), &co, deploy_schema(), &who("helper"), false).unwrap();
        // kubectl stops applying containers: the item stays with the co-owned image, its port goes.
        let mut cfg = dep(1, "nginx:1");
        cfg["spec"]["template"]["spec"]["containers"] = json!([]);
        let after = apply(Some(&both), &cfg, deploy_schema(), &w, false).unwrap();
        assert_eq!(
            after["spec"]["template"]["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx:1", "ports": []}])
        );
    }

    #[test]
    fn bad_configs() {
        let w = who("kubectl");
        let mut cfg = dep(1, "x");
        cfg["metadata"]["managedFields"] = json!([]);
        assert_eq!(
            apply(None, &cfg, deploy_schema(), &w, false)
                .unwrap_err()
                .message(),
            "metadata.managedFields must be nil"
        );
        let mut cfg = dep(1, "x");
        cfg["spec"]["template"]["spec"]["containers"] = json!([{"image": "x"}]);
        let e = apply(None, &cfg, deploy_schema(), &w, false).unwrap_err();
        assert_eq!(e.code(), 400);
        assert!(e.message().starts_with("failed to create typed patch object (apps/v1, Kind=Deployment; default/web): .spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\""), "{}", e.message());
        let mut cfg = dep(1, "x");
        cfg["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
        assert!(
            apply(None, &cfg, deploy_schema(), &w, false)
                .unwrap_err()
                .message()
                .contains("duplicate entries for key [name=\"a\"]")
        );
    }

    #[test]
    fn status_is_reset_on_main_resource_and_crds_are_atomic_lists() {
        let mut cfg = dep(1, "x");
        cfg["status"] = json!({"replicas": 9});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 1}});
        let out = apply(Some(&live), &cfg, deploy_schema(), &who("kubectl"), false).unwrap();
        assert_eq!(out["status"]["replicas"], 1);
        let crd = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"items": [{"a": 1}]}});
        let set = field_set(&crd, &EMPTY, &[]).unwrap();
        assert_eq!(set.to_fields_v1(), json!({"f:spec": {"f:items": {}}}));
    }

    #[test]
    fn update_tracking_takes_changed_fields() {
        let w = who("kube-controller-manager");
        let first = track_update(None, dep(1, "a"), deploy_schema(), &w).unwrap();
        let mf = managed_fields(&first).unwrap();
        assert_eq!(mf.len(), 1);
        assert_eq!(mf[0].operation, "Update");
        assert!(mf[0].fields.contains(&vec![
            PathElement::Field("spec".into()),
            PathElement::Field("replicas".into())
        ]));
        // An unchanged write keeps managedFields as they were.
        let same = track_update(Some(&first), dep(1, "a"), deploy_schema(), &who("other")).unwrap();
        assert_eq!(managed_fields(&same).unwrap(), mf);
        // Removing a field drops it from its owner.
        let mut smaller = dep(1, "a");
        smaller["metadata"]["labels"] = json!({});
        let out = track_update(Some(&first), smaller, deploy_schema(), &who("other")).unwrap();
        let mf = managed_fields(&out).unwrap();
        let kcm = mf
            .iter()
            .find(|e| e.manager == "kube-controller-manager")
            .unwrap();
        assert!(
            !kcm.fields.to_fields_v1()["f:metadata"]
                .as_object()
                .is_some_and(|m| m.contains_key("f:labels"))
        );
    }
}
