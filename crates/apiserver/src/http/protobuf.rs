//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl's
//! typed clients send (`kubectl create configmap|secret|namespace|serviceaccount|deployment`).
//!
//! The envelope is `k8s\0` + `runtime.Unknown{typeMeta, raw}`; `raw` is the object's message from
//! upstream `generated.proto`. The schemas below cover the kinds those generators build, by field
//! number. Decoding is strict: a field number we do not know, carrying a non-zero value, is an
//! error (415), never a silently wrong object. Scalars at their zero value are dropped, as Go's `omitempty` JSON would, except
//! for pointer fields (`replicas`).

use serde_json::{Map, Value, json};
use skiff_k8s_core::status::ApiError;

/// What a field holds.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    Msg(&'static Schema),
    MapStr,
    MapBytes,
    MapQuantity,
    Time,
    IntOrString,
}

struct F {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
    /// A Go pointer field: its zero value is meaningful and kept.
    keep_zero: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> F {
    F {
        num,
        name,
        ty,
        repeated: false,
        keep_zero: false,
    }
}
const fn rep(num: u64, name: &'static str, ty: Ty) -> F {
    F {
        num,
        name,
        ty,
        repeated: true,
        keep_zero: false,
    }
}
const fn ptr(num: u64, name: &'static str, ty: Ty) -> F {
    F {
        num,
        name,
        ty,
        repeated: false,
        keep_zero: true,
    }
}

pub struct Schema {
    name: &'static str,
    fields: &'static [F],
}

static OWNER_REF: Schema = Schema {
    name: "OwnerReference",
    fields: &[
        f(1, "kind", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        f(5, "apiVersion", Ty::Str),
        ptr(6, "controller", Ty::Bool),
        ptr(7, "blockOwnerDeletion", Ty::Bool),
    ],
};
static OBJECT_META: Schema = Schema {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "generateName", Ty::Str),
        f(3, "namespace", Ty::Str),
        f(4, "selfLink", Ty::Str),
        f(5, "uid", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "generation", Ty::Int),
        f(8, "creationTimestamp", Ty::Time),
        f(9, "deletionTimestamp", Ty::Time),
        ptr(10, "deletionGracePeriodSeconds", Ty::Int),
        f(11, "labels", Ty::MapStr),
        f(12, "annotations", Ty::MapStr),
        rep(13, "ownerReferences", Ty::Msg(&OWNER_REF)),
        rep(14, "finalizers", Ty::Str),
    ],
};
static CONFIG_MAP: Schema = Schema {
    name: "ConfigMap",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::MapStr),
        f(3, "binaryData", Ty::MapBytes),
        ptr(4, "immutable", Ty::Bool),
    ],
};
static SECRET: Schema = Schema {
    name: "Secret",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::MapBytes),
        f(3, "type", Ty::Str),
        f(4, "stringData", Ty::MapStr),
        ptr(5, "immutable", Ty::Bool),
    ],
};
static NAMESPACE_SPEC: Schema = Schema {
    name: "NamespaceSpec",
    fields: &[rep(1, "finalizers", Ty::Str)],
};
static NAMESPACE_STATUS: Schema = Schema {
    name: "NamespaceStatus",
    fields: &[f(1, "phase", Ty::Str)],
};
static NAMESPACE: Schema = Schema {
    name: "Namespace",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&NAMESPACE_SPEC)),
        f(3, "status", Ty::Msg(&NAMESPACE_STATUS)),
    ],
};
static LOCAL_REF: Schema = Schema {
    name: "LocalObjectReference",
    fields: &[f(1, "name", Ty::Str)],
};
static OBJECT_REF: Schema = Schema {
    name: "ObjectReference",
    fields: &[
        f(1, "kind", Ty::Str),
        f(2, "namespace", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        f(5, "apiVersion", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "fieldPath", Ty::Str),
    ],
};
static SERVICE_ACCOUNT: Schema = Schema {
    name: "ServiceAccount",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        rep(2, "secrets", Ty::Msg(&OBJECT_REF)),
        rep(3, "imagePullSecrets", Ty::Msg(&LOCAL_REF)),
        ptr(4, "automountServiceAccountToken", Ty::Bool),
    ],
};
static SELECTOR_REQ: Schema = Schema {
    name: "LabelSelectorRequirement",
    fields: &[
        f(1, "key", Ty::Str),
        f(2, "operator", Ty::Str),
        rep(3, "values", Ty::Str),
    ],
};
static LABEL_SELECTOR: Schema = Schema {
    name: "LabelSelector",
    fields: &[
        f(1, "matchLabels", Ty::MapStr),
        rep(2, "matchExpressions", Ty::Msg(&SELECTOR_REQ)),
    ],
};
static RESOURCES: Schema = Schema {
    name: "ResourceRequirements",
    fields: &[
        f(1, "limits", Ty::MapQuantity),
        f(2, "requests", Ty::MapQuantity),
    ],
};
static CONTAINER_PORT: Schema = Schema {
    name: "ContainerPort",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "hostPort", Ty::Int),
        f(3, "containerPort", Ty::Int),
        f(4, "protocol", Ty::Str),
        f(5, "hostIP", Ty::Str),
    ],
};
static ENV_VAR: Schema = Schema {
    name: "EnvVar",
    fields: &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)],
};
static CONTAINER: Schema = Schema {
    name: "Container",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "image", Ty::Str),
        rep(3, "command", Ty::Str),
        rep(4, "args", Ty::Str),
        f(5, "workingDir", Ty::Str),
        rep(6, "ports", Ty::Msg(&CONTAINER_PORT)),
        rep(7, "env", Ty::Msg(&ENV_VAR)),
        f(8, "resources", Ty::Msg(&RESOURCES)),
        f(13, "terminationMessagePath", Ty::Str),
        f(14, "imagePullPolicy", Ty::Str),
        f(16, "stdin", Ty::Bool),
        f(17, "stdinOnce", Ty::Bool),
        f(18, "tty", Ty::Bool),
        f(20, "terminationMessagePolicy", Ty::Str),
    ],
};
static POD_SPEC: Schema = Schema {
    name: "PodSpec",
    fields: &[
        rep(2, "containers", Ty::Msg(&CONTAINER)),
        f(3, "restartPolicy", Ty::Str),
        ptr(4, "terminationGracePeriodSeconds", Ty::Int),
        f(6, "dnsPolicy", Ty::Str),
        f(7, "nodeSelector", Ty::MapStr),
        f(8, "serviceAccountName", Ty::Str),
        f(9, "serviceAccount", Ty::Str),
        f(10, "nodeName", Ty::Str),
        f(11, "hostNetwork", Ty::Bool),
        rep(15, "imagePullSecrets", Ty::Msg(&LOCAL_REF)),
        f(19, "schedulerName", Ty::Str),
        rep(20, "initContainers", Ty::Msg(&CONTAINER)),
    ],
};
static POD_TEMPLATE_SPEC: Schema = Schema {
    name: "PodTemplateSpec",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&POD_SPEC)),
    ],
};
static ROLLING_UPDATE: Schema = Schema {
    name: "RollingUpdateDeployment",
    fields: &[
        f(1, "maxUnavailable", Ty::IntOrString),
        f(2, "maxSurge", Ty::IntOrString),
    ],
};
static DEPLOYMENT_STRATEGY: Schema = Schema {
    name: "DeploymentStrategy",
    fields: &[
        f(1, "type", Ty::Str),
        f(2, "rollingUpdate", Ty::Msg(&ROLLING_UPDATE)),
    ],
};
static DEPLOYMENT_SPEC: Schema = Schema {
    name: "DeploymentSpec",
    fields: &[
        ptr(1, "replicas", Ty::Int),
        f(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Ty::Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", Ty::Int),
        ptr(6, "revisionHistoryLimit", Ty::Int),
        f(7, "paused", Ty::Bool),
        ptr(9, "progressDeadlineSeconds", Ty::Int),
    ],
};
static EMPTY_STATUS: Schema = Schema {
    name: "DeploymentStatus",
    fields: &[],
};
static DEPLOYMENT: Schema = Schema {
    name: "Deployment",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Ty::Msg(&EMPTY_STATUS)),
    ],
};

static SERVICE_PORT: Schema = Schema {
    name: "ServicePort",
    fields: &[
        f(1, "name", Ty::Str),
        f(2, "protocol", Ty::Str),
        f(3, "port", Ty::Int),
        f(4, "targetPort", Ty::IntOrString),
        f(5, "nodePort", Ty::Int),
        ptr(6, "appProtocol", Ty::Str),
    ],
};
static SERVICE_SPEC: Schema = Schema {
    name: "ServiceSpec",
    fields: &[
        rep(1, "ports", Ty::Msg(&SERVICE_PORT)),
        f(2, "selector", Ty::MapStr),
        f(3, "clusterIP", Ty::Str),
        f(4, "type", Ty::Str),
        rep(5, "externalIPs", Ty::Str),
        f(7, "sessionAffinity", Ty::Str),
        f(8, "loadBalancerIP", Ty::Str),
        rep(9, "loadBalancerSourceRanges", Ty::Str),
        f(10, "externalName", Ty::Str),
        f(11, "externalTrafficPolicy", Ty::Str),
        f(12, "healthCheckNodePort", Ty::Int),
        rep(18, "clusterIPs", Ty::Str),
    ],
};
static SERVICE_STATUS: Schema = Schema {
    name: "ServiceStatus",
    fields: &[],
};
static SERVICE: Schema = Schema {
    name: "Service",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&SERVICE_SPEC)),
        f(3, "status", Ty::Msg(&SERVICE_STATUS)),
    ],
};
static POLICY_RULE: Schema = Schema {
    name: "PolicyRule",
    fields: &[
        rep(1, "verbs", Ty::Str),
        rep(2, "apiGroups", Ty::Str),
        rep(3, "resources", Ty::Str),
        rep(4, "resourceNames", Ty::Str),
        rep(5, "nonResourceURLs", Ty::Str),
    ],
};
static ROLE: Schema = Schema {
    name: "Role",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        rep(2, "rules", Ty::Msg(&POLICY_RULE)),
    ],
};
static SUBJECT: Schema = Schema {
    name: "Subject",
    fields: &[
        f(1, "kind", Ty::Str),
        f(2, "apiGroup", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "namespace", Ty::Str),
    ],
};
static ROLE_REF: Schema = Schema {
    name: "RoleRef",
    fields: &[
        f(1, "apiGroup", Ty::Str),
        f(2, "kind", Ty::Str),
        f(3, "name", Ty::Str),
    ],
};
static ROLE_BINDING: Schema = Schema {
    name: "RoleBinding",
    fields: &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        rep(2, "subjects", Ty::Msg(&SUBJECT)),
        f(3, "roleRef", Ty::Msg(&ROLE_REF)),
    ],
};

/// The kinds we decode, by `apiVersion` and `kind`.
fn schema_for(api_version: &str, kind: &str) -> Option<&'static Schema> {
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Secret") => &SECRET,
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("apps/v1", "Deployment") => &DEPLOYMENT,
        ("v1", "Service") => &SERVICE,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => &ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => &ROLE_BINDING,
        _ => return None,
    })
}

const MAGIC: &[u8] = b"k8s\0";

fn unsupported(what: String) -> ApiError {
    ApiError::BadRequest(format!("unable to decode protobuf body: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| unsupported("truncated varint".into()))?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(unsupported("varint too long".into()))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let n = usize::try_from(self.varint()?).map_err(|_| unsupported("length".into()))?;
        if n > self.buf.len() {
            return Err(unsupported("truncated field".into()));
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    /// Next (field number, wire type).
    fn tag(&mut self) -> Result<Option<(u64, u64)>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let t = self.varint()?;
        Ok(Some((t >> 3, t & 7)))
    }
}

fn utf8(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| unsupported("invalid UTF-8 in a string field".into()))
}

fn map_entry(
    b: &[u8],
    value: impl Fn(&[u8]) -> Result<Value, ApiError>,
) -> Result<(String, Value), ApiError> {
    let mut r = Reader { buf: b };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((num, wt)) = r.tag()? {
        if wt != 2 {
            return Err(unsupported(
                "map entry field is not length-delimited".into(),
            ));
        }
        let d = r.bytes()?;
        match num {
            1 => k = utf8(d)?,
            2 => v = value(d)?,
            _ => return Err(unsupported(format!("map entry field {num}"))),
        }
    }
    Ok((k, v))
}

fn quantity(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let mut s = String::new();
    while let Some((num, _)) = r.tag()? {
        let d = r.bytes()?;
        if num == 1 {
            s = utf8(d)?;
        }
    }
    Ok(Value::String(s))
}

fn decode_msg(schema: &'static Schema, b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let mut out = Map::new();
    while let Some((num, wt)) = r.tag()? {
        let Some(field) = schema.fields.iter().find(|f| f.num == num) else {
            // Go's marshaller writes every non-pointer scalar; a zero value we do not model is
            // what the JSON form omits anyway.
            let zero = match wt {
                0 => r.varint()? == 0,
                2 => r.bytes()?.is_empty(),
                _ => false,
            };
            if zero {
                continue;
            }
            return Err(ApiError::UnsupportedMediaType {
                accepted: vec![format!(
                    "application/json (protobuf field {num} of {} is not supported; send JSON or YAML)",
                    schema.name
                )],
            });
        };
        let value = match (field.ty, wt) {
            (Ty::Int, 0) => json!(r.varint()? as i64),
            (Ty::Bool, 0) => json!(r.varint()? != 0),
            (Ty::Str, 2) => json!(utf8(r.bytes()?)?),
            (Ty::Msg(s), 2) => decode_msg(s, r.bytes()?)?,
            (Ty::Time, 2) => {
                let t = decode_time(r.bytes()?)?;
                if t.is_null() {
                    continue;
                }
                t
            }
            (Ty::IntOrString, 2) => decode_int_or_string(r.bytes()?)?,
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, 2) => {
                let (k, v) = map_entry(r.bytes()?, |d| match field.ty {
                    Ty::MapBytes => {
                        use base64::Engine;
                        Ok(json!(base64::engine::general_purpose::STANDARD.encode(d)))
                    }
                    Ty::MapQuantity => quantity(d),
                    _ => Ok(json!(utf8(d)?)),
                })?;
                let m = out.entry(field.name).or_insert_with(|| json!({}));
                if let Some(m) = m.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
            (_, other) => {
                return Err(unsupported(format!(
                    "field {} of {} has wire type {other}",
                    field.name, schema.name
                )));
            }
        };
        if field.repeated {
            let a = out.entry(field.name).or_insert_with(|| json!([]));
            if let Some(a) = a.as_array_mut() {
                a.push(value);
            }
            continue;
        }
        let zero = matches!(&value, Value::String(s) if s.is_empty())
            || value == json!(0)
            || value == json!(false);
        if zero && !field.keep_zero {
            continue;
        }
        out.insert(field.name.into(), value);
    }
    Ok(Value::Object(out))
}

fn decode_time(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let mut secs = 0i64;
    while let Some((num, _)) = r.tag()? {
        let v = r.varint()? as i64;
        if num == 1 {
            secs = v;
        }
    }
    if secs == 0 {
        return Ok(Value::Null);
    }
    Ok(jiff::Timestamp::from_second(secs)
        .map(|t| json!(t.to_string()))
        .unwrap_or(Value::Null))
}

fn decode_int_or_string(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let (mut ty, mut i, mut s) = (0u64, 0i64, String::new());
    while let Some((num, _)) = r.tag()? {
        match num {
            1 => ty = r.varint()?,
            2 => i = r.varint()? as i64,
            3 => s = utf8(r.bytes()?)?,
            _ => return Err(unsupported(format!("IntOrString field {num}"))),
        }
    }
    Ok(if ty == 1 { json!(s) } else { json!(i) })
}

/// Decodes a protobuf request body into the object's JSON form.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| unsupported("missing the k8s protobuf prefix".into()))?;
    let mut r = Reader { buf: rest };
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    while let Some((num, wt)) = r.tag()? {
        if wt != 2 {
            return Err(unsupported(
                "runtime.Unknown field is not length-delimited".into(),
            ));
        }
        let d = r.bytes()?;
        match num {
            1 => {
                let mut t = Reader { buf: d };
                while let Some((n, _)) = t.tag()? {
                    let v = utf8(t.bytes()?)?;
                    match n {
                        1 => api_version = v,
                        2 => kind = v,
                        _ => {}
                    }
                }
            }
            2 => raw = d,
            _ => {}
        }
    }
    let Some(schema) = schema_for(&api_version, &kind) else {
        // The review and token kinds have their decoder next to their handlers.
        return crate::auth_apis::protobuf::decode(body).map_err(|_| {
            ApiError::UnsupportedMediaType {
                accepted: vec!["application/json".into(), "application/yaml".into()],
            }
        });
    };
    let mut obj = decode_msg(schema, raw)?;
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let meta = [field(1, b"demo"), field(3, b"")].concat();
        let entry = [field(1, b"a"), field(2, b"1")].concat();
        let raw = [field(1, &meta), field(2, &entry)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"metadata": {"name": "demo"}, "data": {"a": "1"}, "apiVersion": "v1", "kind": "ConfigMap"})
        );
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let raw = field(9, b"x");
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(decode(&body).unwrap_err().code(), 415);
        let type_meta = [field(1, b"v1"), field(2, b"Pod")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, b"")].concat();
        assert_eq!(decode(&body).unwrap_err().code(), 415);
        assert_eq!(decode(b"nope").unwrap_err().code(), 400);
    }
}
