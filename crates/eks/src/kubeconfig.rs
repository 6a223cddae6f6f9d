//! Admin kubeconfig rendering (`skiff kubeconfig CLUSTER`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A kubeconfig with the cluster's CA and an admin client certificate (`system:masters`).
/// kubectl reads JSON kubeconfigs as well as YAML; JSON keeps this free of a YAML writer.
pub fn admin_kubeconfig(
    cluster: &str,
    server: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> String {
    let user = format!("{cluster}-admin");
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server,
            "certificate-authority-data": STANDARD.encode(ca_pem),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": STANDARD.encode(cert_pem),
            "client-key-data": STANDARD.encode(key_pem),
        }}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("kubeconfig serializes");
    s.push('\n');
    s
}
