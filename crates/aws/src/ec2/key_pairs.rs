//! Key pairs: CreateKeyPair (a real RSA key, private half returned once as PEM and never stored),
//! ImportKeyPair (OpenSSH public keys), DescribeKeyPairs, DeleteKeyPair.
//!
//! Fingerprints follow AWS: created RSA keys show the SHA-1 of the PKCS#8 private key DER; imported
//! RSA keys the MD5 of the public key (RFC 4716 §4); imported ed25519 keys base64 SHA-256.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, Describe, Txn, opt_bool, opt_str, req_str, str_list};
use super::errors::{error, invalid_value};
use super::tags;
use crate::context::RequestContext;
use crate::resources::new_id;

const DESCRIBE: Describe = Describe {
    kind: "key-pair",
    id_field: "KeyPairId",
    ids_member: "KeyPairIds",
    id_prefix: "key",
    not_found: "InvalidKeyPair.NotFound",
    malformed: "InvalidKeyPair.NotFound",
    tags_field: "Tags",
    filters: &[
        ("key-pair-id", "KeyPairId"),
        ("key-name", "KeyName"),
        ("fingerprint", "KeyFingerprint"),
        ("key-type", "KeyType"),
    ],
    max_results: (5, 1000),
};

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----"));
    out
}

/// SSH wire encoding: a length-prefixed string.
fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// SSH mpint: big-endian, with a zero byte when the top bit is set.
fn ssh_mpint(out: &mut Vec<u8>, be: &[u8]) {
    if be.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = vec![0u8];
        v.extend_from_slice(be);
        ssh_string(out, &v);
    } else {
        ssh_string(out, be);
    }
}

/// A fresh RSA-2048 key: (PEM private key, `ssh-rsa …` public key, AWS fingerprint).
fn generate_rsa(name: &str) -> Result<(String, String, String), AwsError> {
    let internal = |_| AwsError::new("InternalError", "key generation failed").with_status(500);
    let kp = KeyPair::generate(KeySize::Rsa2048).map_err(internal)?;
    let der = kp.as_der().map_err(internal)?;
    let fingerprint =
        colon_hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref()).as_ref());
    let public = kp.public_key();
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-rsa");
    ssh_mpint(
        &mut blob,
        public.exponent().big_endian_without_leading_zero(),
    );
    ssh_mpint(
        &mut blob,
        public.modulus().big_endian_without_leading_zero(),
    );
    let ssh = format!("ssh-rsa {} {name}", STANDARD.encode(&blob));
    Ok((pem("PRIVATE KEY", der.as_ref()), ssh, fingerprint))
}

async fn by_name(ctx: &RequestContext, name: &str) -> Result<Option<Value>, AwsError> {
    Ok(common::load_all(ctx, "key-pair")
        .await?
        .into_iter()
        .find(|k| k["KeyName"] == name))
}

fn check_name(name: &str) -> Result<(), AwsError> {
    if name.len() > 255 || !name.is_ascii() {
        return Err(invalid_value(format!(
            "Value ({name}) for parameter keyName is invalid. Length exceeds maximum of 255 ASCII characters."
        )));
    }
    Ok(())
}

#[doc(alias = "CreateKeyPair")]
pub(crate) async fn create_key_pair(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "KeyName")?;
    check_name(name)?;
    let key_type = opt_str(&input, "KeyType").unwrap_or("rsa");
    if key_type != "rsa" {
        return Err(invalid_value(format!(
            "Skiff creates rsa key pairs; for '{key_type}' generate the key locally and use ImportKeyPair."
        )));
    }
    if let Some(f) = opt_str(&input, "KeyFormat")
        && f != "pem"
    {
        return Err(invalid_value(format!(
            "Skiff returns key material in pem format only, not '{f}'."
        )));
    }
    let tags = tags::for_create(&input, "key-pair")?;
    let (material, public, fingerprint) = generate_rsa(name)?;
    let _guard = common::write_lock(ctx).await;
    if by_name(ctx, name).await?.is_some() {
        return Err(error("InvalidKeyPair.Duplicate", &[("name", name)]));
    }
    let record = json!({"KeyPairId": new_id("key"), "KeyName": name, "KeyFingerprint": fingerprint,
                        "KeyType": "rsa", "Tags": tags, "CreateTime": common::now(), "PublicKey": public});
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "key-pair",
        record["KeyPairId"].as_str().unwrap_or_default(),
        &record,
    );
    txn.commit(ctx).await?;
    Ok(
        json!({"KeyPairId": record["KeyPairId"], "KeyName": name, "KeyFingerprint": record["KeyFingerprint"],
              "KeyMaterial": material, "Tags": record["Tags"]}),
    )
}

/// Parse `ssh-rsa AAAA… comment` (the material may arrive base64'd, as a blob member does).
fn parse_public_key(material: &str) -> Result<(String, String, String), AwsError> {
    let bad = || error("InvalidKeyPair.Format", &[]);
    let text = if material.trim_start().starts_with("ssh-") {
        material.to_string()
    } else {
        let bytes = STANDARD.decode(material.trim()).map_err(|_| bad())?;
        String::from_utf8(bytes).map_err(|_| bad())?
    };
    let mut parts = text.split_whitespace();
    let kind = parts.next().ok_or_else(bad)?;
    let blob = STANDARD
        .decode(parts.next().ok_or_else(bad)?)
        .map_err(|_| bad())?;
    // The blob starts with its own type name; it must agree with the text.
    let inner_len = blob
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(bad)?;
    if blob.get(4..4 + inner_len) != Some(kind.as_bytes()) {
        return Err(bad());
    }
    let (key_type, fingerprint) = match kind {
        "ssh-rsa" => ("rsa", colon_hex(&md5(&blob))),
        "ssh-ed25519" => (
            "ed25519",
            STANDARD_NO_PAD.encode(digest::digest(&digest::SHA256, &blob).as_ref()) + "=",
        ),
        _ => return Err(bad()),
    };
    Ok((key_type.to_string(), fingerprint, text.trim().to_string()))
}

#[doc(alias = "ImportKeyPair")]
pub(crate) async fn import_key_pair(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let name = req_str(&input, "KeyName")?;
    check_name(name)?;
    let material = req_str(&input, "PublicKeyMaterial")?;
    let (key_type, fingerprint, public) = parse_public_key(material)?;
    let tags = tags::for_create(&input, "key-pair")?;
    let _guard = common::write_lock(ctx).await;
    if by_name(ctx, name).await?.is_some() {
        return Err(error("InvalidKeyPair.Duplicate", &[("name", name)]));
    }
    let record = json!({"KeyPairId": new_id("key"), "KeyName": name, "KeyFingerprint": fingerprint,
                        "KeyType": key_type, "Tags": tags, "CreateTime": common::now(), "PublicKey": public});
    let mut txn = Txn::new();
    txn.create(
        ctx,
        "key-pair",
        record["KeyPairId"].as_str().unwrap_or_default(),
        &record,
    );
    txn.commit(ctx).await?;
    Ok(
        json!({"KeyPairId": record["KeyPairId"], "KeyName": name, "KeyFingerprint": fingerprint,
              "Tags": record["Tags"]}),
    )
}

#[doc(alias = "DescribeKeyPairs")]
pub(crate) async fn describe_key_pairs(
    ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let names = str_list(&input, "KeyNames");
    let (mut items, _) = common::describe(ctx, &input, &DESCRIBE).await?;
    if let Some(missing) = names
        .iter()
        .find(|n| !items.iter().any(|k| k["KeyName"] == n.as_str()))
    {
        return Err(error("InvalidKeyPair.NotFound", &[("name", missing)]));
    }
    if !names.is_empty() {
        items.retain(|k| names.iter().any(|n| k["KeyName"] == n.as_str()));
    }
    let include_public = opt_bool(&input, "IncludePublicKey").unwrap_or(false);
    for k in &mut items {
        if !include_public && let Some(m) = k.as_object_mut() {
            m.remove("PublicKey");
        }
    }
    Ok(common::listing("KeyPairs", items, None))
}

#[doc(alias = "DeleteKeyPair")]
pub(crate) async fn delete_key_pair(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let _guard = common::write_lock(ctx).await;
    let found = match (opt_str(&input, "KeyPairId"), opt_str(&input, "KeyName")) {
        (Some(id), _) => common::load(ctx, "key-pair", id).await?.map(|(k, _)| k),
        (None, Some(name)) => by_name(ctx, name).await?,
        _ => return Err(super::errors::missing("KeyName")),
    };
    // Deleting a key pair that does not exist succeeds on AWS.
    let Some(key) = found else {
        return Ok(json!({"Return": true}));
    };
    let id = key["KeyPairId"].as_str().unwrap_or_default().to_string();
    let mut txn = Txn::new();
    txn.delete(ctx, "key-pair", &id);
    txn.commit(ctx).await?;
    Ok(json!({"Return": true, "KeyPairId": id}))
}

/// MD5 (RFC 1321), for the one place AWS still shows it: imported RSA key fingerprints.
fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32)
        .collect();
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, v) in [a0, b0, c0, d0].iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        assert_eq!(hex::encode(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex::encode(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex::encode(md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn generated_key_round_trips_through_import_parsing() {
        let (pem_text, public, fingerprint) = generate_rsa("k").unwrap();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(fingerprint.len(), 59, "20 bytes as colon hex");
        let (kind, imported_fp, text) = parse_public_key(&public).unwrap();
        assert_eq!(kind, "rsa");
        assert_eq!(imported_fp.len(), 47, "16 bytes as colon hex");
        assert!(text.starts_with("ssh-rsa AAAAB3NzaC1yc2E"));
        // Also accepted base64'd, as the CLI sends fileb:// material.
        assert!(parse_public_key(&STANDARD.encode(public.as_bytes())).is_ok());
        assert_eq!(
            parse_public_key("ssh-rsa !!!").unwrap_err().code,
            "InvalidKeyPair.Format"
        );
    }
}

#[cfg(test)]
mod dispatch_tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn create_import_describe_delete() {
        let c = ctx();
        let k = ok(&c, "CreateKeyPair", json!({"KeyName": "a"})).await;
        assert!(k["KeyMaterial"].as_str().unwrap().contains("PRIVATE KEY"));
        let e = err(&c, "CreateKeyPair", json!({"KeyName": "a"})).await;
        assert_eq!(e.code, "InvalidKeyPair.Duplicate");
        let d = ok(
            &c,
            "DescribeKeyPairs",
            json!({"KeyNames": ["a"], "IncludePublicKey": true}),
        )
        .await;
        let public = d["KeyPairs"][0]["PublicKey"].as_str().unwrap().to_string();
        assert!(
            d["KeyPairs"][0].get("KeyMaterial").is_none(),
            "the private key is never stored"
        );
        let i = ok(
            &c,
            "ImportKeyPair",
            json!({"KeyName": "b", "PublicKeyMaterial": public}),
        )
        .await;
        assert_eq!(i["KeyFingerprint"].as_str().unwrap().len(), 47);
        let e = err(&c, "DescribeKeyPairs", json!({"KeyNames": ["zzz"]})).await;
        assert_eq!(e.message, "The key pair 'zzz' does not exist");
        ok(&c, "DeleteKeyPair", json!({"KeyName": "a"})).await;
        ok(&c, "DeleteKeyPair", json!({"KeyName": "a"})).await;
        let d = ok(&c, "DescribeKeyPairs", json!({})).await;
        assert_eq!(d["KeyPairs"].as_array().unwrap().len(), 1);
    }
}
