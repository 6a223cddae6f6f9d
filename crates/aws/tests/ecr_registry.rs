//! The ECR registry (OCI distribution v2 on the gateway) with real clients: `skopeo` pushes an OCI
//! image layout the test writes (one tar layer, a config, a manifest) with the password of
//! `aws ecr get-login-password`, the ECR API shows and manages what was pushed, `skopeo` pulls it back
//! with the same digests; `curl` drives the protocol's corners (challenge, chunked and monolithic
//! uploads, mounts, wrong digests, IMMUTABLE tags, paging, deletes).

mod support;

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use skiff_aws::gateway::GatewayConfig;
use support::{Gw, s};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A one-file ustar archive (what an uncompressed layer is).
fn tar_with(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// `gzip -n` (no name or time in the header, so the bytes are reproducible).
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip runs");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// An OCI image layout in `dir` with tag `v1`; returns (manifest digest, layer digest, manifest).
fn write_layout(dir: &Path, greeting: &str) -> (String, String, Vec<u8>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let d = sha(b);
        std::fs::write(blobs.join(&d[7..]), b).unwrap();
        d
    };
    // Compressed, as registries expect: skopeo would compress a plain tar on the way (new digests).
    let tar = tar_with("hello.txt", greeting.as_bytes());
    let layer = gzip(&tar);
    let layer_digest = put(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]}
    }))
    .unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}]
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    (manifest_digest, layer_digest, manifest)
}

async fn skopeo(args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .await
        .expect("skopeo runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One HTTP exchange through curl: (status, headers lower-cased, body).
struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

async fn curl(method: &str, url: &str, auth: Option<&str>, extra: &[&str], body: &[u8]) -> Http {
    let dir = std::env::temp_dir().join(format!("skiff-curl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (hfile, bfile, infile) = (dir.join("h"), dir.join("b"), dir.join("in"));
    std::fs::write(&infile, body).unwrap();
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-s", "-S", "-X", method, "-H", "Expect:"])
        .arg("-D")
        .arg(&hfile)
        .arg("-o")
        .arg(&bfile);
    if method == "HEAD" {
        cmd.arg("-I");
    }
    if let Some(a) = auth {
        cmd.args(["-u", a]);
    }
    if !body.is_empty() || method == "PUT" || method == "PATCH" {
        cmd.arg("--data-binary")
            .arg(format!("@{}", infile.display()));
    }
    cmd.args(extra).arg(url);
    let out = cmd.output().await.expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&hfile).unwrap();
    let body = std::fs::read(&bfile).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Http {
        status,
        headers,
        body,
    }
}

async fn registry_gateway() -> (Gw, std::path::PathBuf) {
    let blobs = std::env::temp_dir().join(format!("skiff-ecr-blobs-{}", uuid::Uuid::new_v4()));
    let gw = Gw::start_with(GatewayConfig {
        registry_dir: Some(blobs.clone()),
        reachable_registry_uris: true,
        ..GatewayConfig::default()
    })
    .await;
    (gw, blobs)
}

fn host_of(gw: &Gw) -> String {
    gw.url().trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_and_pulls_what_the_ecr_api_then_shows() {
    let (gw, blobs) = registry_gateway().await;
    let host = host_of(&gw);
    let created = gw
        .ok(&["ecr", "create-repository", "--repository-name", "team/app"])
        .await;
    let uri = s(&created["repository"]["repositoryUri"]);
    assert_eq!(uri, format!("{host}/team/app"));
    let token = gw.ok(&["ecr", "get-authorization-token"]).await;
    assert_eq!(
        token["authorizationData"][0]["proxyEndpoint"],
        format!("http://{host}")
    );
    let password = s(&gw.ok(&["ecr", "get-login-password"]).await);
    let creds = format!("AWS:{password}");

    let src = std::env::temp_dir().join(format!("skiff-oci-{}", uuid::Uuid::new_v4()));
    let (digest, layer_digest, manifest) = write_layout(&src, "hello from skiff\n");
    // Without credentials the registry challenges; a made-up password gets the same.
    let denied = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{uri}:v1"),
    ])
    .await
    .unwrap_err();
    assert!(
        denied.contains("401")
            || denied.contains("unauthorized")
            || denied.contains("authentication required"),
        "{denied}"
    );
    skopeo(&[
        "copy",
        "--dest-creds",
        &creds,
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{uri}:v1"),
    ])
    .await
    .expect("skopeo push");

    let images = gw
        .ok(&["ecr", "describe-images", "--repository-name", "team/app"])
        .await;
    let img = &images["imageDetails"][0];
    assert_eq!(img["imageDigest"], digest.as_str());
    assert_eq!(img["imageTags"], json!(["v1"]));
    assert_eq!(
        img["imageManifestMediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(img["imageSizeInBytes"].as_i64().unwrap() > 0);
    assert!(img["imagePushedAt"].is_number() || img["imagePushedAt"].is_string());
    let got = gw
        .ok(&[
            "ecr",
            "batch-get-image",
            "--repository-name",
            "team/app",
            "--image-ids",
            "imageTag=v1",
        ])
        .await;
    assert_eq!(
        got["images"][0]["imageManifest"]
            .as_str()
            .unwrap()
            .as_bytes(),
        manifest.as_slice()
    );
    // The blob is a file under the registry dir, content-addressed.
    assert!(blobs.join("blobs/sha256").join(&layer_digest[7..]).exists());

    let inspected: Value = serde_json::from_str(
        &skopeo(&[
            "inspect",
            "--creds",
            &creds,
            "--tls-verify=false",
            &format!("docker://{uri}:v1"),
        ])
        .await
        .expect("skopeo inspect"),
    )
    .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!(inspected["Layers"], json!([layer_digest]));

    let out = std::env::temp_dir().join(format!("skiff-oci-out-{}", uuid::Uuid::new_v4()));
    skopeo(&[
        "copy",
        "--src-creds",
        &creds,
        "--src-tls-verify=false",
        &format!("docker://{uri}:v1"),
        &format!("oci:{}:v1", out.display()),
    ])
    .await
    .expect("skopeo pull");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(&layer_digest[7..])).unwrap(),
        std::fs::read(src.join("blobs/sha256").join(&layer_digest[7..])).unwrap()
    );

    // Images keep the repository from being deleted; batch-delete-image empties it.
    let err = gw
        .err(&["ecr", "delete-repository", "--repository-name", "team/app"])
        .await;
    assert!(err.contains("RepositoryNotEmptyException"), "{err}");
    gw.ok(&[
        "ecr",
        "batch-delete-image",
        "--repository-name",
        "team/app",
        "--image-ids",
        &format!("imageDigest={digest}"),
    ])
    .await;
    let gone = skopeo(&[
        "inspect",
        "--creds",
        &creds,
        "--tls-verify=false",
        &format!("docker://{uri}:v1"),
    ])
    .await
    .unwrap_err();
    assert!(gone.contains("manifest unknown"), "{gone}");
    gw.ok(&["ecr", "delete-repository", "--repository-name", "team/app"])
        .await;

    let _ = std::fs::remove_dir_all(&src);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&blobs);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_answers_as_the_distribution_spec_says() {
    let (gw, blobs) = registry_gateway().await;
    let base = format!("{}/v2", gw.url());
    gw.ok(&["ecr", "create-repository", "--repository-name", "app"])
        .await;
    gw.ok(&[
        "ecr",
        "create-repository",
        "--repository-name",
        "frozen",
        "--image-tag-mutability",
        "IMMUTABLE",
    ])
    .await;
    let password = s(&gw.ok(&["ecr", "get-login-password"]).await);
    let auth = format!("AWS:{password}");
    let a = Some(auth.as_str());

    // The challenge, and what a wrong password gets.
    let r = curl("GET", &format!("{base}/"), None, &[], b"").await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(r.error_code(), "UNAUTHORIZED");
    let r = curl("GET", &format!("{base}/"), Some("AWS:forged"), &[], b"").await;
    assert_eq!(r.status, 401);
    let r = curl("GET", &format!("{base}/"), a, &[], b"").await;
    assert_eq!(r.status, 200);

    // Unknown names and objects.
    let r = curl("GET", &format!("{base}/nope/tags/list"), a, &[], b"").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    let missing = sha(b"missing");
    let r = curl("HEAD", &format!("{base}/app/blobs/{missing}"), a, &[], b"").await;
    assert_eq!(r.status, 404);
    let r = curl("GET", &format!("{base}/app/blobs/{missing}"), a, &[], b"").await;
    assert_eq!(r.error_code(), "BLOB_UNKNOWN");
    let r = curl("GET", &format!("{base}/app/manifests/v9"), a, &[], b"").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );

    // Chunked upload: POST, two PATCHes (the second out of order first), PUT with the digest.
    let layer = b"0123456789abcdefghij".to_vec();
    let layer_digest = sha(&layer);
    let r = curl("POST", &format!("{base}/app/blobs/uploads/"), a, &[], b"").await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.starts_with("/v2/app/blobs/uploads/"));
    let up = format!("{}{loc}", gw.url());
    let r = curl(
        "PATCH",
        &up,
        a,
        &["-H", "Content-Range: 10-19"],
        &layer[10..],
    )
    .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("range"), Some("0-0"));
    let r = curl("PATCH", &up, a, &["-H", "Content-Range: 0-9"], &layer[..10]).await;
    assert_eq!((r.status, r.header("range")), (202, Some("0-9")));
    let r = curl("GET", &up, a, &[], b"").await;
    assert_eq!((r.status, r.header("range")), (204, Some("0-9")));
    let r = curl("PATCH", &up, a, &[], &layer[10..]).await;
    assert_eq!(r.header("range"), Some("0-19"));
    let r = curl("PUT", &format!("{up}?digest={layer_digest}"), a, &[], b"").await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(layer_digest.as_str())
    );
    let r = curl("PUT", &format!("{up}?digest={layer_digest}"), a, &[], b"").await;
    assert_eq!(r.error_code(), "BLOB_UPLOAD_UNKNOWN");
    let r = curl(
        "HEAD",
        &format!("{base}/app/blobs/{layer_digest}"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("20")));
    let r = curl(
        "GET",
        &format!("{base}/app/blobs/{layer_digest}"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.body, layer);
    let r = curl(
        "GET",
        &format!("{base}/app/blobs/{layer_digest}"),
        a,
        &["-H", "Range: bytes=5-9"],
        b"",
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (206, &layer[5..10]));

    // Monolithic upload with the wrong digest: refused, nothing stored.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = sha(&config);
    let r = curl(
        "POST",
        &format!("{base}/app/blobs/uploads/?digest={}", sha(b"other")),
        a,
        &[],
        &config,
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = curl(
        "POST",
        &format!("{base}/app/blobs/uploads/?digest={config_digest}"),
        a,
        &[],
        &config,
    )
    .await;
    assert_eq!(r.status, 201);

    // A manifest naming a blob the repository lacks is refused.
    let manifest = |config_d: &str, n: u8| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": config_d, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "digest": layer_digest, "size": layer.len()}],
            "annotations": {"n": n.to_string()}
        }))
        .unwrap()
    };
    let ct = "Content-Type: application/vnd.docker.distribution.manifest.v2+json";
    let bad = manifest(&missing, 0);
    let r = curl(
        "PUT",
        &format!("{base}/app/manifests/v1"),
        a,
        &["-H", ct],
        &bad,
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    let m1 = manifest(&config_digest, 1);
    let m1_digest = sha(&m1);
    let r = curl(
        "PUT",
        &format!("{base}/app/manifests/{}", sha(b"x")),
        a,
        &["-H", ct],
        &m1,
    )
    .await;
    assert_eq!(r.error_code(), "DIGEST_INVALID");
    let r = curl(
        "PUT",
        &format!("{base}/app/manifests/v1"),
        a,
        &["-H", ct],
        &m1,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), Some(m1_digest.as_str()));
    // Pushing the same thing again is fine.
    let r = curl(
        "PUT",
        &format!("{base}/app/manifests/v1"),
        a,
        &["-H", ct],
        &m1,
    )
    .await;
    assert_eq!(r.status, 201);
    for reference in ["v1", m1_digest.as_str()] {
        let r = curl(
            "GET",
            &format!("{base}/app/manifests/{reference}"),
            a,
            &[],
            b"",
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, m1);
        assert_eq!(
            r.header("content-type"),
            Some("application/vnd.docker.distribution.manifest.v2+json")
        );
        assert_eq!(r.header("docker-content-digest"), Some(m1_digest.as_str()));
    }
    let described = gw
        .ok(&["ecr", "describe-images", "--repository-name", "app"])
        .await;
    assert_eq!(
        described["imageDetails"][0]["imageDigest"],
        m1_digest.as_str()
    );
    assert_eq!(
        described["imageDetails"][0]["imageSizeInBytes"],
        (config.len() + layer.len()) as i64
    );

    // Tags: moved on MUTABLE, paged.
    for (tag, n) in [("v2", 2), ("v3", 3), ("v1", 4)] {
        let m = manifest(&config_digest, n);
        let r = curl(
            "PUT",
            &format!("{base}/app/manifests/{tag}"),
            a,
            &["-H", ct],
            &m,
        )
        .await;
        assert_eq!(r.status, 201, "{tag}");
    }
    let r = curl("GET", &format!("{base}/app/tags/list?n=2"), a, &[], b"").await;
    assert_eq!(r.json()["tags"], json!(["v1", "v2"]));
    assert!(r.header("link").unwrap().contains("last=v2"));
    let r = curl(
        "GET",
        &format!("{base}/app/tags/list?n=2&last=v2"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.json()["tags"], json!(["v3"]));
    assert!(r.header("link").is_none());
    // m1 lost its only tag but is still there by digest, untagged.
    let listed = gw
        .ok(&[
            "ecr",
            "list-images",
            "--repository-name",
            "app",
            "--filter",
            "tagStatus=UNTAGGED",
        ])
        .await;
    assert_eq!(listed["imageIds"], json!([{"imageDigest": m1_digest}]));

    // Cross-repository mount, then IMMUTABLE refuses to move a tag.
    let r = curl(
        "POST",
        &format!("{base}/frozen/blobs/uploads/?mount={layer_digest}&from=app"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 201);
    let r = curl(
        "POST",
        &format!("{base}/frozen/blobs/uploads/?mount={config_digest}&from=nope"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!(
        r.status, 202,
        "a mount from an unknown repository starts an upload"
    );
    let r = curl(
        "POST",
        &format!("{base}/frozen/blobs/uploads/?mount={config_digest}&from=app"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 201);
    let r = curl(
        "PUT",
        &format!("{base}/frozen/manifests/v1"),
        a,
        &["-H", ct],
        &m1,
    )
    .await;
    assert_eq!(r.status, 201);
    let m5 = manifest(&config_digest, 5);
    let r = curl(
        "PUT",
        &format!("{base}/frozen/manifests/v1"),
        a,
        &["-H", ct],
        &m5,
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "TAG_INVALID"));
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be overwritten because the repository is immutable"),
        "{}",
        r.json()
    );

    // Deletes: by tag, then by digest.
    let r = curl("DELETE", &format!("{base}/app/manifests/v3"), a, &[], b"").await;
    assert_eq!(r.status, 202);
    let r = curl("GET", &format!("{base}/app/manifests/v3"), a, &[], b"").await;
    assert_eq!(r.error_code(), "MANIFEST_UNKNOWN");
    let r = curl(
        "DELETE",
        &format!("{base}/app/manifests/{m1_digest}"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 202);
    let left = gw
        .ok(&["ecr", "list-images", "--repository-name", "app"])
        .await;
    assert_eq!(left["imageIds"].as_array().unwrap().len(), 2);

    // A deleted repository's blobs are no longer readable through a re-created one.
    gw.ok(&[
        "ecr",
        "delete-repository",
        "--repository-name",
        "app",
        "--force",
    ])
    .await;
    gw.ok(&["ecr", "create-repository", "--repository-name", "app"])
        .await;
    let r = curl(
        "HEAD",
        &format!("{base}/app/blobs/{layer_digest}"),
        a,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);

    let _ = std::fs::remove_dir_all(&blobs);
    gw.stop().await;
}

/// Uploads `bytes` as one layer of `repo` through the ECR layer API (the aws CLI), in parts of
/// at most `part` bytes; returns the digest.
async fn upload_layer(gw: &Gw, dir: &Path, repo: &str, bytes: &[u8], part: usize) -> String {
    let started = gw
        .ok(&["ecr", "initiate-layer-upload", "--repository-name", repo])
        .await;
    let upload_id = s(&started["uploadId"]);
    assert_eq!(started["partSize"], 2 * 1024 * 1024);
    for (i, chunk) in bytes.chunks(part).enumerate() {
        let file = dir.join(format!("part-{}", uuid::Uuid::new_v4()));
        std::fs::write(&file, chunk).unwrap();
        let first = i * part;
        let last = first + chunk.len() - 1;
        let up = gw
            .ok(&[
                "ecr",
                "upload-layer-part",
                "--repository-name",
                repo,
                "--upload-id",
                &upload_id,
                "--part-first-byte",
                &first.to_string(),
                "--part-last-byte",
                &last.to_string(),
                "--layer-part-blob",
                &format!("fileb://{}", file.display()),
            ])
            .await;
        assert_eq!(up["lastByteReceived"], last as u64);
    }
    let digest = sha(bytes);
    let done = gw
        .ok(&[
            "ecr",
            "complete-layer-upload",
            "--repository-name",
            repo,
            "--upload-id",
            &upload_id,
            "--layer-digests",
            &digest,
        ])
        .await;
    assert_eq!(done["layerDigest"], digest.as_str());
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_api_and_the_registry_share_one_blob_store() {
    let (gw, blobs) = registry_gateway().await;
    let host = host_of(&gw);
    let work = std::env::temp_dir().join(format!("skiff-layers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work).unwrap();
    gw.ok(&["ecr", "create-repository", "--repository-name", "api/app"])
        .await;
    let password = s(&gw.ok(&["ecr", "get-login-password"]).await);
    let creds = format!("AWS:{password}");

    // An image built through the API alone (as `docker push` to ECR's API-based clients does):
    // layer and config as layers, then PutImage; skopeo pulls exactly those bytes from /v2/.
    let tar = tar_with("api.txt", b"uploaded through InitiateLayerUpload\n");
    let layer = gzip(&tar);
    let layer_digest = upload_layer(&gw, &work, "api/app", &layer, 100).await;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]}
    }))
    .unwrap();
    let config_digest = upload_layer(&gw, &work, "api/app", &config, 1 << 20).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}]
    })
    .to_string();
    let put = gw
        .ok(&[
            "ecr",
            "put-image",
            "--repository-name",
            "api/app",
            "--image-tag",
            "v1",
            "--image-manifest",
            &manifest,
        ])
        .await;
    assert_eq!(
        put["image"]["imageId"]["imageDigest"],
        sha(manifest.as_bytes())
    );
    let out = work.join("pulled");
    skopeo(&[
        "copy",
        "--src-creds",
        &creds,
        "--src-tls-verify=false",
        &format!("docker://{host}/api/app:v1"),
        &format!("oci:{}:v1", out.display()),
    ])
    .await
    .expect("skopeo pulls what the layer API uploaded");
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(&layer_digest[7..])).unwrap(),
        layer
    );

    // The availability check and the download URL, for a layer uploaded either way.
    let src = work.join("layout");
    let (_, pushed_layer, _) = write_layout(&src, "pushed with skopeo\n");
    skopeo(&[
        "copy",
        "--dest-creds",
        &creds,
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{host}/api/app:pushed"),
    ])
    .await
    .expect("skopeo push");
    let missing = format!("sha256:{}", "0".repeat(64));
    let checked = gw
        .ok(&[
            "ecr",
            "batch-check-layer-availability",
            "--repository-name",
            "api/app",
            "--layer-digests",
            &layer_digest,
            &pushed_layer,
            &missing,
            "sha256:nothex",
        ])
        .await;
    let layers = checked["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{checked}");
    assert!(layers.iter().all(|l| l["layerAvailability"] == "AVAILABLE"));
    let codes: Vec<&str> = checked["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["failureCode"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["MissingLayerDigest", "InvalidLayerDigest"],
        "{checked}"
    );
    let url = gw
        .ok(&[
            "ecr",
            "get-download-url-for-layer",
            "--repository-name",
            "api/app",
            "--layer-digest",
            &pushed_layer,
        ])
        .await;
    let download = s(&url["downloadUrl"]);
    let fetched = curl("GET", &download, None, &[], b"").await;
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.body,
        std::fs::read(src.join("blobs/sha256").join(&pushed_layer[7..])).unwrap()
    );
    let forged = curl(
        "GET",
        &download.replace("signature=", "signature=0"),
        None,
        &[],
        b"",
    )
    .await;
    assert_eq!(forged.status, 403, "a URL edited after signing is refused");
    let err = gw
        .err(&[
            "ecr",
            "get-download-url-for-layer",
            "--repository-name",
            "api/app",
            "--layer-digest",
            &missing,
        ])
        .await;
    assert!(err.contains("LayersNotFoundException"), "{err}");

    // The errors ECR answers, and nothing changes on them.
    let started = gw
        .ok(&[
            "ecr",
            "initiate-layer-upload",
            "--repository-name",
            "api/app",
        ])
        .await;
    let upload_id = s(&started["uploadId"]);
    let part = work.join("gap");
    std::fs::write(&part, b"abc").unwrap();
    let err = gw
        .err(&[
            "ecr",
            "upload-layer-part",
            "--repository-name",
            "api/app",
            "--upload-id",
            &upload_id,
            "--part-first-byte",
            "5",
            "--part-last-byte",
            "7",
            "--layer-part-blob",
            &format!("fileb://{}", part.display()),
        ])
        .await;
    assert!(err.contains("InvalidLayerPartException"), "{err}");
    gw.ok(&[
        "ecr",
        "upload-layer-part",
        "--repository-name",
        "api/app",
        "--upload-id",
        &upload_id,
        "--part-first-byte",
        "0",
        "--part-last-byte",
        "2",
        "--layer-part-blob",
        &format!("fileb://{}", part.display()),
    ])
    .await;
    let err = gw
        .err(&[
            "ecr",
            "complete-layer-upload",
            "--repository-name",
            "api/app",
            "--upload-id",
            &upload_id,
            "--layer-digests",
            &missing,
        ])
        .await;
    assert!(err.contains("InvalidLayerException"), "{err}");
    let err = gw
        .err(&[
            "ecr",
            "complete-layer-upload",
            "--repository-name",
            "api/app",
            "--upload-id",
            "00000000-0000-4000-8000-000000000000",
            "--layer-digests",
            &missing,
        ])
        .await;
    assert!(err.contains("UploadNotFoundException"), "{err}");
    let again = gw
        .ok(&[
            "ecr",
            "initiate-layer-upload",
            "--repository-name",
            "api/app",
        ])
        .await;
    let file = work.join("layer-again");
    std::fs::write(&file, &layer).unwrap();
    gw.ok(&[
        "ecr",
        "upload-layer-part",
        "--repository-name",
        "api/app",
        "--upload-id",
        &s(&again["uploadId"]),
        "--part-first-byte",
        "0",
        "--part-last-byte",
        &(layer.len() - 1).to_string(),
        "--layer-part-blob",
        &format!("fileb://{}", file.display()),
    ])
    .await;
    let err = gw
        .err(&[
            "ecr",
            "complete-layer-upload",
            "--repository-name",
            "api/app",
            "--upload-id",
            &s(&again["uploadId"]),
            "--layer-digests",
            &layer_digest,
        ])
        .await;
    assert!(err.contains("LayerAlreadyExistsException"), "{err}");
    let dangling = manifest.replace(&layer_digest[7..], &missing[7..]);
    let err = gw
        .err(&[
            "ecr",
            "put-image",
            "--repository-name",
            "api/app",
            "--image-tag",
            "v2",
            "--image-manifest",
            &dangling,
        ])
        .await;
    assert!(err.contains("LayersNotFoundException"), "{err}");
    let tags = gw
        .ok(&["ecr", "list-images", "--repository-name", "api/app"])
        .await;
    assert_eq!(tags["imageIds"].as_array().unwrap().len(), 2, "{tags}");

    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_dir_all(&blobs);
    gw.stop().await;
}
