//! A cluster's files in the data dir: `clusters/<name>/cluster.json` (identity and port) and `pki/`.
//!
//! Files, not store records, because `skiff kubeconfig` must read them while `skiff up` holds the store
//! open (the embedded store locks its file).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What must survive a restart for a cluster to come back the same: its id (store prefix), its port (so
/// kubeconfigs stay valid) and the Kubernetes version it reports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    pub name: String,
    /// Store prefix `/k8s/<id>/`; a UUID so a re-created cluster of the same name starts empty.
    pub id: String,
    pub port: u16,
    pub kubernetes_version: String,
    pub created_at: String,
    /// Set when the control plane serves an EKS cluster record (None for the bare `demo` plane).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks: Option<EksBinding>,
}

/// Which EKS cluster record a control plane serves, and the ServiceAccount issuer it signs with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EksBinding {
    pub account: String,
    pub region: String,
    pub name: String,
    /// `identity.oidc.issuer` of the record: the `iss` of the cluster's ServiceAccount tokens.
    pub issuer: String,
}

impl EksBinding {
    /// The control plane's (and data dir folder's) name: the bare cluster name in the default
    /// account and region (so `skiff kubeconfig prod` works), else `<region>.<account>.<name>`
    /// (EKS names have no dots, so the two forms never collide).
    pub fn plane_name(&self) -> String {
        if self.account == skiff_aws::credentials::DEFAULT_ACCOUNT_ID && self.region == "us-east-1"
        {
            self.name.clone()
        } else {
            format!("{}.{}.{}", self.region, self.account, self.name)
        }
    }
}

pub fn clusters_root(data_dir: &Path) -> PathBuf {
    data_dir.join("clusters")
}

pub fn cluster_dir(data_dir: &Path, name: &str) -> PathBuf {
    clusters_root(data_dir).join(name)
}

pub fn pki_dir(data_dir: &Path, name: &str) -> PathBuf {
    cluster_dir(data_dir, name).join("pki")
}

pub fn read_record(data_dir: &Path, name: &str) -> std::io::Result<Option<ClusterRecord>> {
    let path = cluster_dir(data_dir, name).join("cluster.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every cluster recorded in the data dir, by name.
pub fn list_records(data_dir: &Path) -> std::io::Result<Vec<ClusterRecord>> {
    let root = clusters_root(data_dir);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && let Some(rec) = read_record(data_dir, name)?
        {
            out.push(rec);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn write_record(data_dir: &Path, rec: &ClusterRecord) -> std::io::Result<()> {
    let dir = cluster_dir(data_dir, &rec.name);
    std::fs::create_dir_all(&dir)?;
    write_durably(
        &dir.join("cluster.json"),
        &serde_json::to_vec_pretty(rec).expect("record serializes"),
    )
}

/// Write to a temp file, fsync, rename over the target, fsync the directory: never a torn file after kill -9.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_list_sorted() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_records(dir.path()).unwrap().is_empty());
        for name in ["b", "a"] {
            let rec = ClusterRecord {
                name: name.into(),
                id: format!("id-{name}"),
                port: 6443,
                kubernetes_version: "1.33".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                eks: None,
            };
            write_record(dir.path(), &rec).unwrap();
        }
        let names: Vec<_> = list_records(dir.path())
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(read_record(dir.path(), "a").unwrap().unwrap().id, "id-a");
        assert!(read_record(dir.path(), "zz").unwrap().is_none());
    }

    #[test]
    fn plane_names_are_bare_only_in_the_default_account_and_region() {
        let mut b = EksBinding {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            name: "prod".into(),
            issuer: String::new(),
        };
        assert_eq!(b.plane_name(), "prod");
        b.region = "eu-west-1".into();
        assert_eq!(b.plane_name(), "eu-west-1.000000000000.prod");
    }
}
