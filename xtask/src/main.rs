//! `cargo xtask <task>`: project automation.
//!
//! - `strip-models`: regenerate `models/aws/<service>/<apiVersion>/service-2.json.gz` from the installed
//!   botocore (pinned in `models/aws/VERSION`), with every prose field removed: the shapes are facts we
//!   interpret, the documentation is AWS's text and not ours to ship.
//! - `ci`: the checks `.ci/run` runs (fmt, clippy, tests).

mod protobuf_schema;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// The services Skiff serves: botocore's data folder name for each.
const SERVICES: &[&str] = &[
    "ec2",
    "eks",
    "iam",
    "sts",
    "autoscaling",
    "elbv2",
    "route53",
    "ecr",
    "kms",
    "secretsmanager",
    "eks-auth",
    "logs",
    "efs",
];

/// Keys whose string values are prose (removed wherever they appear).
const PROSE_KEYS: &[&str] = &["documentation", "documentationUrl", "examples"];

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "strip-models" => strip_models(),
        "ci" => ci(),
        "protobuf-schema" => protobuf_schema::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        other => bail!("unknown task {other:?}; tasks: strip-models, ci"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn ci() -> anyhow::Result<()> {
    for args in [
        &["fmt", "--all", "--check"][..],
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ][..],
        &["test", "--workspace"][..],
    ] {
        let status = Command::new("cargo")
            .args(args)
            .current_dir(workspace_root())
            .status()?;
        if !status.success() {
            bail!("cargo {} failed", args.join(" "));
        }
    }
    Ok(())
}

/// botocore's package folder and version, asked of the Python that has it installed.
fn botocore() -> anyhow::Result<(PathBuf, String)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import botocore,os;print(os.path.dirname(botocore.__file__));print(botocore.__version__)",
        ])
        .output()
        .context("running python3 to locate botocore")?;
    if !out.status.success() {
        bail!(
            "botocore is not importable: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let mut lines = text.lines();
    let dir = lines.next().context("no botocore path")?.to_string();
    let version = lines.next().context("no botocore version")?.to_string();
    Ok((PathBuf::from(dir), version))
}

/// Remove every prose field, recursively. Only string/object-valued prose keys are removed, so a
/// structure *member* that happens to be called `documentation` (an object with a `shape`) survives.
fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, val| {
                !(PROSE_KEYS.contains(&k.as_str()) && (val.is_string() || k == "examples"))
            });
            for val in map.values_mut() {
                strip(val);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

fn latest_api_version(service_dir: &Path) -> anyhow::Result<String> {
    let mut versions: Vec<String> = std::fs::read_dir(service_dir)
        .with_context(|| format!("reading {}", service_dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.path().join("service-2.json.gz").exists() || e.path().join("service-2.json").exists()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    versions.pop().context("no api version folder")
}

fn read_model(dir: &Path) -> anyhow::Result<Value> {
    let gz = dir.join("service-2.json.gz");
    let mut text = String::new();
    if gz.exists() {
        flate2::read::GzDecoder::new(std::fs::File::open(&gz)?).read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(dir.join("service-2.json"))?;
    }
    Ok(serde_json::from_str(&text)?)
}

fn strip_models() -> anyhow::Result<()> {
    let (botocore_dir, version) = botocore()?;
    let out_root = workspace_root().join("models/aws");
    for service in SERVICES {
        let service_dir = botocore_dir.join("data").join(service);
        let api = latest_api_version(&service_dir)?;
        let mut model = read_model(&service_dir.join(&api))?;
        strip(&mut model);
        let out_dir = out_root.join(service).join(&api);
        std::fs::create_dir_all(&out_dir)?;
        let json = serde_json::to_vec(&model)?;
        // Fixed mtime/no filename in the gzip header so regenerating gives identical bytes.
        let file = std::fs::File::create(out_dir.join("service-2.json.gz"))?;
        let mut enc = flate2::GzBuilder::new()
            .mtime(0)
            .write(file, flate2::Compression::best());
        enc.write_all(&json)?;
        enc.finish()?;
        println!("{service} {api}: {} bytes stripped JSON", json.len());
    }
    std::fs::write(out_root.join("VERSION"), format!("botocore {version}\n"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_removes_prose_but_keeps_members_named_documentation() {
        let mut v = serde_json::json!({
            "documentation": "prose",
            "shapes": {"S": {"type": "structure", "documentation": "more",
                "members": {"documentation": {"shape": "String", "documentation": "x"}}}}
        });
        strip(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"shapes": {"S": {"type": "structure",
                "members": {"documentation": {"shape": "String"}}}}})
        );
    }
}
