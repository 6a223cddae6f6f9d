//! `DefaultTolerationSeconds`: a new Pod that does not tolerate the `not-ready` and `unreachable`
//! NoExecute taints gets 300-second tolerations for them, so it is evicted five minutes after its
//! node fails rather than at once.

use serde_json::{Value, json};

use super::{Operation, Request};

/// Seconds of the added tolerations (`--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds`).
pub const DEFAULT_SECONDS: i64 = 300;

const KEYS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];

/// Does an existing toleration already cover `key`'s NoExecute taint?
fn tolerates(list: &[Value], key: &str) -> bool {
    list.iter().any(|t| {
        let k = t.get("key").and_then(Value::as_str).unwrap_or("");
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
        let exists_all =
            k.is_empty() && t.get("operator").and_then(Value::as_str) == Some("Exists");
        (k == key || exists_all) && (effect.is_empty() || effect == "NoExecute")
    })
}

pub fn mutate(req: &Request<'_>, obj: &mut Value) {
    if !req.is("", "pods") || req.operation != Operation::Create {
        return;
    }
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = list.as_array_mut() else {
        return;
    };
    for key in KEYS {
        if !tolerates(list, key) {
            list.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_SECONDS}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_missing_keys_only() {
        let list = vec![
            json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}),
        ];
        assert!(tolerates(&list, KEYS[0]));
        assert!(!tolerates(&list, KEYS[1]));
        assert!(tolerates(&[json!({"operator": "Exists"})], KEYS[1]));
        assert!(!tolerates(
            &[json!({"key": KEYS[1], "effect": "NoSchedule"})],
            KEYS[1]
        ));
    }
}
