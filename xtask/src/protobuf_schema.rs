//! `cargo xtask protobuf-schema [--go-src PACKAGE=GITDIR]...`: regenerate
//! `crates/k8s-core/data/protobuf/schema.json.gz`, the message table `skiff_k8s_core::protobuf` decodes
//! Kubernetes protobuf request bodies with.
//!
//! Three public sources, read as data (nothing is copied into our code):
//! - the `k8s-pb` 0.9.0 crate sources in the local cargo registry: prost-generated from upstream's
//!   `generated.proto`, its `#[prost(...)]` attributes give every field's tag, wire type, repeated/map and
//!   message type;
//! - the `k8s-openapi` 0.29.0 sources (same registry): their serde `"jsonName" => Field::Key_x` arms give
//!   the JSON names prost snake-cased away (`hostIP`, `podIPs`), their `Resource` impls the API group of
//!   each package, and non-`Option` fields mark the properties Go always serialises;
//! - optionally, the Go API types (`--go-src k8s.io.api=/work/.mirror/kubernetes+api/repo`, a git dir):
//!   their struct tags say which scalar fields Go emits even when zero (pointers, no `omitempty`), which
//!   decides whether a zero on the wire is kept (`replicas: 0`) or dropped (`generation: 0`), which
//!   nil fields Go writes as `null`, and which fields are `json:",inline"` embeddings (empty name).
//!
//! The committed table was generated from git mirrors of kubernetes/api, kubernetes/apimachinery and
//! kubernetes/apiextensions-apiserver (revisions recorded in the file's `source`):
//!
//! ```text
//! cargo xtask protobuf-schema --go-src k8s.io.api=<api git dir> \
//!     --go-src k8s.io.apimachinery=<apimachinery git dir> \
//!     --go-src k8s.io.apiextensions_apiserver=<apiextensions-apiserver git dir>
//! ```
//!
//! Names are resolved here, at generation time; the runtime reads only the table.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

const K8S_PB: &str = "k8s-pb-0.9.0";
const K8S_OPENAPI: &str = "k8s-openapi-0.29.0";

/// One field of one message, as prost declared it.
#[derive(Debug)]
struct PbField {
    tag: u32,
    snake: String,
    kind: String,
    repeated: bool,
}

/// What k8s-openapi says about one type: normalised name → (JSON name, required).
type OpenapiType = HashMap<String, (String, bool)>;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut go_sources = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--go-src" => {
                let spec = it.next().context("--go-src needs PACKAGE=GITDIR")?;
                let (pkg, dir) = spec
                    .split_once('=')
                    .context("--go-src needs PACKAGE=GITDIR")?;
                go_sources.push((pkg.to_string(), PathBuf::from(dir)));
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    let pb_root = registry_crate(K8S_PB)?.join("src");
    let openapi_root = registry_crate(K8S_OPENAPI)?.join("src");

    let messages = read_k8s_pb(&pb_root)?;
    let (openapi, groups) = read_k8s_openapi(&openapi_root)?;
    let mut go = HashMap::new();
    let mut go_revisions = Vec::new();
    for (pkg, dir) in &go_sources {
        let rev = read_go_types(pkg, dir, &mut go)?;
        go_revisions.push(format!("{pkg}@{rev}"));
    }

    // Global fallback for names of types k8s-openapi lacks (alpha/beta versions): normalised → JSON name,
    // kept only when every occurrence agrees.
    let mut global: HashMap<String, Option<String>> = HashMap::new();
    for ty in openapi.values() {
        for (norm, (name, _)) in ty {
            global
                .entry(norm.clone())
                .and_modify(|e| {
                    if e.as_deref() != Some(name.as_str()) {
                        *e = None;
                    }
                })
                .or_insert_with(|| Some(name.clone()));
        }
    }

    let mut out_messages = serde_json::Map::new();
    let mut kinds = serde_json::Map::new();
    let mut stats: BTreeMap<&str, usize> = BTreeMap::new();
    for ((module, msg), fields) in &messages {
        let package = format!("k8s.io.{}", module.replace('/', "."));
        let full = format!("{package}.{msg}");
        // Type names compare case-insensitively: prost renamed `JSONSchemaProps` to `JsonSchemaProps`.
        let lower = msg.to_ascii_lowercase();
        let own = openapi.get(&(module.clone(), lower.clone()));
        // The same kind in a sibling version of the group (apps/v1beta2 Deployment → apps/v1).
        let group_dir = module.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let sibling: Vec<&OpenapiType> = openapi
            .iter()
            .filter(|((m, n), _)| {
                *n == lower && m.rsplit_once('/').map(|(g, _)| g) == Some(group_dir)
            })
            .map(|(_, t)| t)
            .collect();
        let mut out_fields = Vec::new();
        for f in fields {
            let norm = normalise(&f.snake);
            let go_fact = go.get(&(package.clone(), lower.clone(), f.tag));
            let (name, source) = if let Some((n, _)) = own.and_then(|t| t.get(&norm)) {
                (n.clone(), "k8s-openapi type")
            } else if let Some((n, _)) = sibling.iter().find_map(|t| t.get(&norm)) {
                (n.clone(), "k8s-openapi sibling version")
            } else if let Some((n, _, _)) = go_fact {
                (n.clone(), "go struct tag")
            } else if let Some(Some(n)) = global.get(&norm) {
                (n.clone(), "k8s-openapi any type")
            } else {
                (lower_camel(&f.snake), "camelCase")
            };
            *stats.entry(source).or_default() += 1;
            let scalar = !f.kind.starts_with("message:") && !f.kind.starts_with("map<");
            let keep_zero = match go_fact {
                Some((_, z, _)) => *z,
                None => own.and_then(|t| t.get(&norm)).is_some_and(|(_, req)| *req),
            };
            let null_when_absent = go_fact.is_some_and(|(_, _, n)| *n);
            // [tag, JSON name, kind, flags]: 1 = repeated, 2 = keep a zero value (Go pointer or no
            // omitempty), 4 = `null` when absent (nil pointer/slice/map without omitempty). Arrays, not
            // objects: the file is read on every start and stays small.
            let flags = u8::from(f.repeated)
                | (u8::from(scalar && keep_zero && !f.repeated) << 1)
                | (u8::from(null_when_absent) << 2);
            let field = json!([f.tag, name, f.kind, flags]);
            out_fields.push(field);
        }
        out_messages.insert(full.clone(), Value::Array(out_fields));

        // Every message of an API package is addressable by apiVersion/kind; only top-level kinds are
        // ever sent, and the extra entries cost nothing.
        if let Some(rest) = module.strip_prefix("api/") {
            if let Some((dir, version)) = rest.split_once('/') {
                let api_version = match groups.get(dir) {
                    Some(g) if g.is_empty() => version.to_string(),
                    Some(g) => format!("{g}/{version}"),
                    None => format!("{dir}.k8s.io/{version}"),
                };
                kinds.insert(format!("{api_version}/{msg}"), json!(full));
            }
        } else if let Some(group) = special_group(module) {
            let version = module.rsplit('/').next().unwrap_or("");
            kinds.insert(format!("{group}/{version}/{msg}"), json!(full));
        }
    }

    let doc = json!({
        "source": format!(
            "{K8S_PB} (tags, types), {K8S_OPENAPI} (JSON names), Go struct tags: {}",
            go_revisions.join(", ")
        ),
        "messages": out_messages,
        "kinds": kinds,
    });
    // Plain JSON, one message per line: k8s-core has no gzip dependency, and line diffs stay readable.
    let out = workspace_root().join("crates/k8s-core/data/protobuf/schema.json");
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new(".")))?;
    let mut text = String::from("{\"source\":");
    text.push_str(&serde_json::to_string(&doc["source"])?);
    text.push_str(",\n\"kinds\":");
    text.push_str(&serde_json::to_string(&doc["kinds"])?);
    text.push_str(",\n\"messages\":{");
    for (i, (name, fields)) in out_messages_sorted(&doc).into_iter().enumerate() {
        text.push_str(if i == 0 { "\n" } else { ",\n" });
        text.push_str(&serde_json::to_string(&name)?);
        text.push(':');
        text.push_str(&serde_json::to_string(&fields)?);
    }
    text.push_str("\n}}\n");
    std::fs::write(&out, text)?;
    println!(
        "wrote {} ({} messages, {} kinds); JSON names from: {stats:?}",
        out.display(),
        doc["messages"].as_object().map_or(0, |m| m.len()),
        doc["kinds"].as_object().map_or(0, |m| m.len()),
    );
    Ok(())
}

fn out_messages_sorted(doc: &Value) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = doc["messages"]
        .as_object()
        .map(|m| m.iter().map(|(k, f)| (k.clone(), f.clone())).collect())
        .unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Groups of the packages outside `k8s.io/api` that carry built-in kinds.
fn special_group(module: &str) -> Option<&'static str> {
    if module.starts_with("apiextensions_apiserver/") {
        Some("apiextensions.k8s.io")
    } else if module.starts_with("kube_aggregator/") {
        Some("apiregistration.k8s.io")
    } else if module == "apimachinery/pkg/apis/meta/v1" {
        Some("meta.k8s.io")
    } else {
        None
    }
}

/// A crate's unpacked sources in `~/.cargo/registry/src/*/`.
fn registry_crate(name: &str) -> anyhow::Result<PathBuf> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let src = home.join("registry/src");
    for entry in std::fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))? {
        let dir = entry?.path().join(name);
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    bail!(
        "{name} is not in {}; run `cargo info {}` or `cargo fetch` first",
        src.display(),
        name
    )
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Letters and digits only, lowercased: `host_ip` ~ `hostIP`, `r#ref` ~ `$ref`,
/// `x_kubernetes_int_or_string` ~ `x-kubernetes-int-or-string`.
fn normalise(name: &str) -> String {
    name.trim_start_matches("r#")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.trim_start_matches("r#").chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// (module path like `api/core/v1`, message name) → fields, from every `mod.rs` of k8s-pb.
fn read_k8s_pb(root: &Path) -> anyhow::Result<BTreeMap<(String, String), Vec<PbField>>> {
    let mut files = Vec::new();
    rust_files(root, &mut files)?;
    let mut out = BTreeMap::new();
    for file in files.iter().filter(|f| f.ends_with("mod.rs")) {
        let module = file
            .parent()
            .and_then(|p| p.strip_prefix(root).ok())
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let text = std::fs::read_to_string(file)?;
        let mut lines = text.lines();
        let mut current: Option<(String, Vec<PbField>)> = None;
        while let Some(line) = lines.next() {
            if let Some(rest) = line.strip_prefix("pub struct ") {
                let name = rest.split([' ', '{']).next().unwrap_or("").to_string();
                if rest.trim_end().ends_with("{}") {
                    // A message with no fields (`CustomResourceSubresourceStatus`).
                    out.insert((module.clone(), name), Vec::new());
                } else {
                    current = Some((name, Vec::new()));
                }
            } else if line == "}" {
                if let Some((name, fields)) = current.take() {
                    out.insert((module.clone(), name), fields);
                }
            } else if let Some(attr) = line.trim().strip_prefix("#[prost(") {
                let Some((_, fields)) = current.as_mut() else {
                    continue;
                };
                // The declaration follows, possibly wrapped by rustfmt over several lines.
                let mut decl = String::new();
                for next in lines.by_ref() {
                    let t = next.trim();
                    if t.starts_with("///") || t.starts_with("#[") {
                        continue;
                    }
                    decl.push_str(t);
                    if decl.ends_with(',') && decl.matches('<').count() == decl.matches('>').count()
                    {
                        break;
                    }
                }
                fields.push(
                    parse_pb_field(&module, attr, &decl)
                        .with_context(|| format!("{}: {attr} {decl}", file.display()))?,
                );
            }
        }
    }
    Ok(out)
}

fn parse_pb_field(module: &str, attr: &str, decl: &str) -> anyhow::Result<PbField> {
    let tag = attr
        .split("tag = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|t| t.parse().ok())
        .context("no tag")?;
    let (snake, ty) = decl
        .trim_start_matches("pub ")
        .trim_end_matches(',')
        .split_once(':')
        .context("no field type")?;
    let ty = ty.trim();
    let repeated = attr.contains("repeated");
    let first = attr.split([',', ' ']).next().unwrap_or("");
    let kind = if let Some(map) = attr.strip_prefix("btree_map = \"") {
        let spec = map.split('"').next().unwrap_or("");
        let value = spec.split(", ").nth(1).unwrap_or("");
        let value = if value == "message" {
            // BTreeMap<String, X>: the value type follows the first top-level comma.
            let inner = ty.split_once(',').map(|(_, v)| v).unwrap_or("").trim();
            format!(
                "message:{}",
                resolve(module, inner.trim_end_matches(['>', ',', ' ']))
            )
        } else {
            value.to_string()
        };
        format!("map<string,{value}>")
    } else {
        match first {
            "message" => format!("message:{}", resolve(module, unwrap_type(ty))),
            "bytes" => "bytes".into(),
            "string" | "int32" | "int64" | "bool" | "double" => first.into(),
            other => bail!("unexpected prost type {other:?}"),
        }
    };
    Ok(PbField {
        tag,
        snake: snake.trim().to_string(),
        kind,
        repeated,
    })
}

fn unwrap_type(mut ty: &str) -> &str {
    for wrapper in [
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::boxed::Box<",
    ] {
        while let Some(inner) = ty.strip_prefix(wrapper) {
            // rustfmt leaves a trailing comma inside wrapped generics: `Option<X,>`.
            ty = inner
                .strip_suffix('>')
                .unwrap_or(inner)
                .trim_end_matches([',', ' ']);
        }
    }
    ty.trim_end_matches([',', ' '])
}

/// A Rust path relative to `module` (`super::super::...::meta::v1::ObjectMeta`) → protobuf full name.
fn resolve(module: &str, path: &str) -> String {
    let mut parts: Vec<&str> = module.split('/').collect();
    let mut segs: Vec<&str> = path.split("::").collect();
    let name = segs.pop().unwrap_or("");
    for seg in segs {
        if seg == "super" {
            parts.pop();
        } else {
            parts.push(seg);
        }
    }
    format!("k8s.io.{}.{name}", parts.join("."))
}

/// k8s-openapi sources of every version it carries: (module, type) → names; package dir → API group.
#[allow(clippy::type_complexity)]
fn read_k8s_openapi(
    root: &Path,
) -> anyhow::Result<(
    HashMap<(String, String), OpenapiType>,
    HashMap<String, String>,
)> {
    let mut types: HashMap<(String, String), OpenapiType> = HashMap::new();
    let mut groups = HashMap::new();
    let mut files = Vec::new();
    rust_files(root, &mut files)?;
    for file in &files {
        let Ok(rel) = file.strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        // v1_33/api/core/v1/pod_status.rs → api/core/v1
        let Some((_, rest)) = rel.split_once('/') else {
            continue;
        };
        let Some((module, _)) = rest.rsplit_once('/') else {
            continue;
        };
        let text = std::fs::read_to_string(file)?;
        let Some(ty) = text
            .lines()
            .find_map(|l| l.strip_prefix("pub struct "))
            .and_then(|r| r.split([' ', '{', '<']).next())
        else {
            continue;
        };
        // Field name in the struct → required (not Option).
        let mut required = HashMap::new();
        for line in text.lines() {
            if let Some(decl) = line.strip_prefix("    pub ")
                && let Some((name, t)) = decl.split_once(':')
            {
                required.insert(name.trim().to_string(), !t.trim().starts_with("Option<"));
            }
        }
        let entry = types
            .entry((module.to_string(), ty.to_ascii_lowercase()))
            .or_default();
        for line in text.lines() {
            let t = line.trim();
            let Some(rest) = t.strip_prefix('"') else {
                continue;
            };
            let Some((json_name, rest)) = rest.split_once("\" => Field::Key_") else {
                continue;
            };
            let key = rest.trim_end_matches(',');
            let req = required.get(key).copied().unwrap_or(false);
            entry.insert(normalise(json_name), (json_name.to_string(), req));
        }
        if let Some(api_version) = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("const API_VERSION: &'static str = \"")
            })
            .and_then(|r| r.split('"').next())
            && let Some(dir) = module
                .strip_prefix("api/")
                .and_then(|m| m.split('/').next())
        {
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            groups.insert(dir.to_string(), group.to_string());
        }
    }
    Ok((types, groups))
}

/// Go facts about one field: JSON name, emitted when zero, written as `null` when nil.
type GoField = (String, bool, bool);

/// Go struct tags of one package tree in a git directory: (proto package, lowercased type, tag) →
/// facts.
fn read_go_types(
    prefix: &str,
    git_dir: &Path,
    out: &mut HashMap<(String, String, u32), GoField>,
) -> anyhow::Result<String> {
    let git = |args: &[&str]| -> anyhow::Result<String> {
        let o = Command::new("git")
            .arg("--git-dir")
            .arg(git_dir)
            .args(args)
            .output()?;
        if !o.status.success() {
            bail!(
                "git {args:?} in {}: {}",
                git_dir.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let revision = git(&["rev-parse", "HEAD"])?.trim().to_string();
    let listing = git(&["ls-tree", "-r", "--name-only", "HEAD"])?;
    for path in listing.lines() {
        // `types.go`, `types_jsonschema.go`, …: where API structs and their tags live.
        let file = path.rsplit('/').next().unwrap_or(path);
        if !file.starts_with("types") || !file.ends_with(".go") || path.contains("/testing/") {
            continue;
        }
        let Some((dir, _)) = path.rsplit_once('/') else {
            continue;
        };
        let package = format!("{prefix}.{}", dir.replace('/', "."));
        let text = git(&["show", &format!("HEAD:{path}")])?;
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("type ") {
                current = rest.strip_suffix(" struct {").map(|n| n.trim().to_string());
                continue;
            }
            if line == "}" {
                current = None;
            }
            let Some(ty) = &current else { continue };
            let Some(field) = line.strip_prefix('\t') else {
                continue;
            };
            if field.trim_start().starts_with("//") {
                continue;
            }
            let Some((decl, tags)) = field.split_once('`') else {
                continue;
            };
            let Some(pb) = tag_value(tags, "protobuf") else {
                continue;
            };
            let Some(num) = pb.split(',').nth(1).and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let json_tag = tag_value(tags, "json").unwrap_or_default();
            let mut opts = json_tag.split(',');
            let name = opts.next().unwrap_or("").to_string();
            let omitempty = opts.any(|o| o == "omitempty" || o == "omitzero");
            let words: Vec<&str> = decl.split_whitespace().collect();
            let go_type = words.get(1).or(words.first()).copied().unwrap_or("");
            let keep_zero = go_type.starts_with('*') || !omitempty;
            let nullable = ["*", "[]", "map["].iter().any(|p| go_type.starts_with(p));
            out.insert(
                (package.clone(), ty.to_ascii_lowercase(), num),
                (name, keep_zero, nullable && !omitempty),
            );
        }
    }
    Ok(revision)
}

fn tag_value(tags: &str, key: &str) -> Option<String> {
    let start = tags.find(&format!("{key}:\""))? + key.len() + 2;
    let rest = &tags[start..];
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_paths() {
        assert_eq!(
            resolve(
                "api/core/v1",
                "super::super::super::apimachinery::pkg::apis::meta::v1::ObjectMeta"
            ),
            "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(resolve("api/core/v1", "Probe"), "k8s.io.api.core.v1.Probe");
    }

    #[test]
    fn parses_wrapped_map_field() {
        let f = parse_pb_field(
            "api/core/v1",
            "btree_map = \"string, message\", tag = \"4\")]",
            "pub limits: ::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,super::super::super::apimachinery::pkg::api::resource::Quantity,>,",
        )
        .unwrap();
        assert_eq!(f.tag, 4);
        assert_eq!(
            f.kind,
            "map<string,message:k8s.io.apimachinery.pkg.api.resource.Quantity>"
        );
    }

    #[test]
    fn unwraps_rustfmt_wrapped_generics() {
        assert_eq!(
            unwrap_type("::core::option::Option<super::v1::ObjectMeta,>"),
            "super::v1::ObjectMeta"
        );
        assert_eq!(unwrap_type("::prost::alloc::vec::Vec<Probe>"), "Probe");
    }

    #[test]
    fn names() {
        assert_eq!(normalise("r#type"), "type");
        assert_eq!(normalise("hostIP"), normalise("host_ip"));
        assert_eq!(normalise("$ref"), normalise("r#ref"));
        assert_eq!(
            normalise("x-kubernetes-list-type"),
            normalise("x_kubernetes_list_type")
        );
        assert_eq!(lower_camel("pod_ips"), "podIps");
        assert_eq!(
            tag_value("json:\"a,omitempty\" protobuf:\"varint,1,opt\"", "json").unwrap(),
            "a,omitempty"
        );
    }
}
