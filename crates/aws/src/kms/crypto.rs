//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
//! GenerateDataKeyWithoutPlaintext, GenerateRandom; plus the [`encrypt`] / [`decrypt`] domain
//! functions other services (Secrets Manager, EKS secrets encryption) call, with
//! [`generate_data_key_for`] and [`key_status`] for envelope encryption.
//!
//! Real AES-256-GCM. The ciphertext blob names its key so Decrypt needs no `KeyId`, as on AWS:
//! `"SKMS" | 0x01 | key id (36 ASCII bytes) | material generation (u32 BE) | nonce (12) |
//! ciphertext + tag (16)`; the generation lets blobs sealed before a rotation still open. The encryption
//! context is bound as AAD (its pairs sorted by key, JSON-encoded), so a different context fails
//! with `InvalidCiphertextException`; the header is bound too, so a blob cannot be re-labelled.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{KeyRecord, KmsError, KmsResult, opt_i64, opt_str, req_str, resolve};
use crate::context::RequestContext;

const MAGIC: &[u8; 4] = b"SKMS";
const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 36;
const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN + 4;

/// Encrypt `plaintext` under the key `key_id` names (id, ARN or alias), binding `context`.
/// Returns the ciphertext blob and the key's ARN.
pub async fn encrypt(
    ctx: &RequestContext,
    key_id: &str,
    plaintext: &[u8],
    context: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, String), AwsError> {
    let (key, _) = resolve(ctx, key_id).await?;
    key.usable()?;
    Ok((seal(&key, plaintext, context)?, key.arn))
}

/// Decrypt a blob made by [`encrypt`] with the same `context`. Returns the plaintext and the key's ARN.
pub async fn decrypt(
    ctx: &RequestContext,
    blob: &[u8],
    context: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, String), AwsError> {
    let (pt, key) = open(ctx, blob, context, None).await?;
    Ok((pt, key.arn))
}

/// A data key made for another service: the plaintext to use at once and the blob to store beside
/// what it protects (envelope encryption).
#[derive(Clone)]
pub struct DataKey {
    /// The key bytes; never stored.
    pub plaintext: Vec<u8>,
    /// The plaintext sealed under the KMS key (what [`decrypt`] opens again).
    pub ciphertext_blob: Vec<u8>,
    /// The ARN of the KMS key that sealed it.
    pub key_arn: String,
}

impl std::fmt::Debug for DataKey {
    /// Never prints the plaintext.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("key_arn", &self.key_arn)
            .field("len", &self.plaintext.len())
            .finish()
    }
}

/// GenerateDataKey for other services (EKS secrets encryption): `len` random bytes (1..=1024) and
/// the same bytes sealed under `key_id` with `context` bound. Key state applies as for the API: a
/// disabled key is `DisabledException`, one pending deletion `KMSInvalidStateException`.
#[doc(alias = "GenerateDataKey")]
pub async fn generate_data_key_for(
    ctx: &RequestContext,
    key_id: &str,
    len: usize,
    context: &BTreeMap<String, String>,
) -> Result<DataKey, AwsError> {
    if !(1..=1024).contains(&len) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{len}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        ))
        .into());
    }
    let (key, _) = resolve(ctx, key_id).await?;
    key.usable()?;
    let mut plaintext = vec![0u8; len];
    rand::rng().fill_bytes(&mut plaintext);
    let ciphertext_blob = seal(&key, &plaintext, context)?;
    Ok(DataKey {
        plaintext,
        ciphertext_blob,
        key_arn: key.arn,
    })
}

/// What a caller holding cached data keys needs to know about its KMS key (the KMS v2 plugin's
/// `Status` answer): the key's ARN and which material generation seals new blobs now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    pub key_arn: String,
    /// Grows by one on every rotation (automatic or `RotateKeyOnDemand`); a holder of cached data
    /// keys makes a new one when it changes, as the API server does when the plugin's key id changes.
    pub generation: usize,
}

/// Whether `key_id` can encrypt and decrypt now: `Ok` with its status, or the error KMS would give
/// an Encrypt call (`NotFoundException`, `DisabledException`, `KMSInvalidStateException`).
#[doc(alias = "Status")]
pub async fn key_status(ctx: &RequestContext, key_id: &str) -> Result<KeyStatus, AwsError> {
    let (key, _) = resolve(ctx, key_id).await?;
    key.usable()?;
    Ok(KeyStatus {
        generation: key.retired_material.len(),
        key_arn: key.arn,
    })
}

/// The AES key of material generation `generation` (an unknown generation is a forged blob).
fn aead_key(key: &KeyRecord, generation: usize) -> KmsResult<LessSafeKey> {
    let material = key
        .material_of(generation)
        .ok_or_else(|| KmsError::InvalidCiphertext(String::new()))?;
    let material = B64.decode(material).map_err(|_| {
        KmsError::Internal(
            AwsError::new("KMSInternalException", "corrupt key material").with_status(500),
        )
    })?;
    let unbound = UnboundKey::new(&AES_256_GCM, &material).map_err(|_| {
        KmsError::Internal(
            AwsError::new("KMSInternalException", "corrupt key material").with_status(500),
        )
    })?;
    Ok(LessSafeKey::new(unbound))
}

fn aad(header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(
        serde_json::to_string(context)
            .unwrap_or_default()
            .as_bytes(),
    );
    out
}

fn seal(
    key: &KeyRecord,
    plaintext: &[u8],
    context: &BTreeMap<String, String>,
) -> KmsResult<Vec<u8>> {
    let mut blob = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + 16);
    blob.extend_from_slice(MAGIC);
    blob.push(VERSION);
    blob.extend_from_slice(key.key_id.as_bytes());
    let generation = key.retired_material.len();
    blob.extend_from_slice(&(generation as u32).to_be_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut sealed = plaintext.to_vec();
    aead_key(key, generation)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(&blob, context)),
            &mut sealed,
        )
        .map_err(|_| {
            KmsError::Internal(
                AwsError::new("KMSInternalException", "encryption failed").with_status(500),
            )
        })?;
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Parse the blob, find its key (checking `expected` when the caller named one), and open it.
async fn open(
    ctx: &RequestContext,
    blob: &[u8],
    context: &BTreeMap<String, String>,
    expected: Option<&str>,
) -> KmsResult<(Vec<u8>, KeyRecord)> {
    let invalid = || KmsError::InvalidCiphertext(String::new());
    if blob.len() < HEADER_LEN + NONCE_LEN + 16 || &blob[..4] != MAGIC || blob[4] != VERSION {
        return Err(invalid());
    }
    let key_id = std::str::from_utf8(&blob[5..5 + KEY_ID_LEN]).map_err(|_| invalid())?;
    let generation = u32::from_be_bytes(
        blob[5 + KEY_ID_LEN..HEADER_LEN]
            .try_into()
            .map_err(|_| invalid())?,
    ) as usize;
    if uuid::Uuid::parse_str(key_id).is_err() {
        return Err(invalid());
    }
    let (key, _) = resolve(ctx, key_id).await.map_err(|e| match e {
        KmsError::NotFound(_) => invalid(),
        other => other,
    })?;
    if let Some(want) = expected {
        let (named, _) = resolve(ctx, want).await?;
        if named.key_id != key.key_id {
            return Err(KmsError::IncorrectKey(
                "The key ID in the request does not identify a CMK that can perform this operation."
                    .into(),
            ));
        }
    }
    key.usable()?;
    let header = &blob[..HEADER_LEN];
    let nonce: [u8; NONCE_LEN] = blob[HEADER_LEN..HEADER_LEN + NONCE_LEN]
        .try_into()
        .map_err(|_| invalid())?;
    let mut data = blob[HEADER_LEN + NONCE_LEN..].to_vec();
    let plain = aead_key(&key, generation)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(header, context)),
            &mut data,
        )
        .map_err(|_| invalid())?;
    Ok((plain.to_vec(), key))
}

/// `EncryptionContext`-style member: a map of strings.
fn context_of(input: &Value, member: &str) -> KmsResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let Some(map) = input.get(member).and_then(Value::as_object) {
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| KmsError::Validation(format!("{member} values must be strings")))?;
            out.insert(k.clone(), v.to_string());
        }
    }
    Ok(out)
}

fn blob_of(input: &Value, member: &str) -> KmsResult<Vec<u8>> {
    B64.decode(req_str(input, member)?)
        .map_err(|_| KmsError::InvalidCiphertext(String::new()))
}

fn algorithm(input: &Value, member: &str) -> KmsResult<()> {
    match opt_str(input, member) {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!(
            "Algorithm {other} is incompatible with key spec SYMMETRIC_DEFAULT."
        ))),
    }
}

#[doc(alias = "Encrypt")]
pub async fn encrypt_op(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    algorithm(&input, "EncryptionAlgorithm")?;
    let plaintext = B64
        .decode(req_str(&input, "Plaintext")?)
        .map_err(|_| KmsError::Validation("Plaintext is not valid base64".into()))?;
    let context = context_of(&input, "EncryptionContext")?;
    let (key, _) = resolve(ctx, req_str(&input, "KeyId")?).await?;
    key.usable()?;
    let blob = seal(&key, &plaintext, &context)?;
    Ok(json!({
        "CiphertextBlob": B64.encode(blob),
        "KeyId": key.arn,
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

#[doc(alias = "Decrypt")]
pub async fn decrypt_op(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    algorithm(&input, "EncryptionAlgorithm")?;
    let blob = blob_of(&input, "CiphertextBlob")?;
    let context = context_of(&input, "EncryptionContext")?;
    let (plain, key) = open(ctx, &blob, &context, opt_str(&input, "KeyId")).await?;
    Ok(json!({
        "KeyId": key.arn,
        "Plaintext": B64.encode(plain),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

#[doc(alias = "ReEncrypt")]
pub async fn re_encrypt(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    algorithm(&input, "SourceEncryptionAlgorithm")?;
    algorithm(&input, "DestinationEncryptionAlgorithm")?;
    let blob = blob_of(&input, "CiphertextBlob")?;
    let source_context = context_of(&input, "SourceEncryptionContext")?;
    let (plain, source) = open(ctx, &blob, &source_context, opt_str(&input, "SourceKeyId")).await?;
    let (dest, _) = resolve(ctx, req_str(&input, "DestinationKeyId")?).await?;
    dest.usable()?;
    let out = seal(
        &dest,
        &plain,
        &context_of(&input, "DestinationEncryptionContext")?,
    )?;
    Ok(json!({
        "CiphertextBlob": B64.encode(out),
        "SourceKeyId": source.arn,
        "KeyId": dest.arn,
        "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

/// Data key length from `KeySpec` (AES_256 / AES_128) or `NumberOfBytes` (1..=1024), exactly one.
fn data_key_len(input: &Value) -> KmsResult<usize> {
    match (opt_str(input, "KeySpec"), opt_i64(input, "NumberOfBytes")) {
        (Some(_), Some(_)) => Err(KmsError::Validation(
            "Please specify either number of bytes or key spec.".into(),
        )),
        (None, None) => Err(KmsError::Validation(
            "Please specify either number of bytes or key spec.".into(),
        )),
        (Some("AES_256"), None) => Ok(32),
        (Some("AES_128"), None) => Ok(16),
        (Some(other), None) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
        ))),
        (None, Some(n)) if (1..=1024).contains(&n) => Ok(n as usize),
        (None, Some(n)) => Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        ))),
    }
}

async fn data_key(ctx: &RequestContext, input: &Value) -> KmsResult<(Vec<u8>, Vec<u8>, String)> {
    let len = data_key_len(input)?;
    let context = context_of(input, "EncryptionContext")?;
    let (key, _) = resolve(ctx, req_str(input, "KeyId")?).await?;
    key.usable()?;
    let mut plain = vec![0u8; len];
    rand::rng().fill_bytes(&mut plain);
    let blob = seal(&key, &plain, &context)?;
    Ok((plain, blob, key.arn))
}

#[doc(alias = "GenerateDataKey")]
pub async fn generate_data_key(ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let (plain, blob, arn) = data_key(ctx, &input).await?;
    Ok(json!({"CiphertextBlob": B64.encode(blob), "Plaintext": B64.encode(plain), "KeyId": arn}))
}

#[doc(alias = "GenerateDataKeyWithoutPlaintext")]
pub async fn generate_data_key_without_plaintext(
    ctx: &RequestContext,
    input: Value,
) -> KmsResult<Value> {
    let (_, blob, arn) = data_key(ctx, &input).await?;
    Ok(json!({"CiphertextBlob": B64.encode(blob), "KeyId": arn}))
}

#[doc(alias = "GenerateRandom")]
pub async fn generate_random(_ctx: &RequestContext, input: Value) -> KmsResult<Value> {
    let n = opt_i64(&input, "NumberOfBytes").unwrap_or(32);
    if !(1..=1024).contains(&n) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        )));
    }
    let mut bytes = vec![0u8; n as usize];
    rand::rng().fill_bytes(&mut bytes);
    Ok(json!({ "Plaintext": B64.encode(bytes) }))
}
