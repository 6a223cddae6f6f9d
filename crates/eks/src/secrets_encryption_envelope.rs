//! The stored form of an encrypted Secret, as kube-apiserver's KMS v2 envelope transformer writes it:
//! `k8s:enc:kms:v2:<provider>:` followed by an `EncryptedObject` protobuf message
//! (`k8s.io/kms/apis/v2`: 1 `encryptedData`, 2 `keyID`, 3 `encryptedDEKSource`, 4 `annotations`,
//! 5 `encryptedDEKSourceType`), and the AES-256-GCM data key (DEK) that seals `encryptedData`.
//!
//! Pure code, no I/O: [`crate::secrets_encryption`] obtains DEKs from KMS and decides what to seal.
//! The DEK source type is `AES_GCM_KEY` (1): the KMS-encrypted blob is the DEK itself (upstream's
//! newer default derives per-write keys from a seed; both are valid KMS v2 envelopes). The etcd key
//! is bound as additional authenticated data, as upstream does, so a value copied to another key
//! does not decrypt.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// What every KMS v2 value starts with (then the provider name and a colon).
pub const KMS_V2_PREFIX: &[u8] = b"k8s:enc:kms:v2:";
/// The provider name in the encryption configuration EKS writes for its API servers.
pub const PROVIDER_NAME: &str = "aws-encryption-provider";
/// `EncryptedDEKSourceType` `AES_GCM_KEY`: the encrypted DEK source is the DEK.
pub const DEK_SOURCE_AES_GCM_KEY: u64 = 1;
/// DEK length: AES-256.
pub const DEK_LEN: usize = 32;
/// GCM tag length.
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("invalid KMS v2 envelope: {0}")]
    Malformed(String),
    #[error("failed to decrypt data with the DEK (wrong key, or value moved to another key)")]
    Open,
    #[error("invalid DEK: {0}")]
    BadDek(String),
    #[error("random source failed")]
    Random,
}

/// `k8s.io/kms/apis/v2.EncryptedObject` (annotations are skipped: we write none).
#[doc(alias = "EncryptedObject")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Nonce (12 bytes) followed by the AES-256-GCM ciphertext and tag of the object.
    pub encrypted_data: Vec<u8>,
    /// The KMS key that sealed the DEK (its ARN).
    pub key_id: String,
    /// The DEK sealed by KMS (a KMS ciphertext blob).
    pub encrypted_dek_source: Vec<u8>,
    pub encrypted_dek_source_type: u64,
}

/// Whether a stored value is a KMS v2 envelope.
pub fn is_encrypted(value: &[u8]) -> bool {
    value.starts_with(KMS_V2_PREFIX)
}

impl Envelope {
    /// The stored value: prefix, provider, colon, protobuf.
    pub fn to_value(&self, provider: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            KMS_V2_PREFIX.len()
                + provider.len()
                + 1
                + self.encrypted_data.len()
                + self.key_id.len()
                + self.encrypted_dek_source.len()
                + 16,
        );
        out.extend_from_slice(KMS_V2_PREFIX);
        out.extend_from_slice(provider.as_bytes());
        out.push(b':');
        put_bytes(&mut out, 1, &self.encrypted_data);
        put_bytes(&mut out, 2, self.key_id.as_bytes());
        put_bytes(&mut out, 3, &self.encrypted_dek_source);
        put_varint(&mut out, 5 << 3);
        put_varint(&mut out, self.encrypted_dek_source_type);
        out
    }

    /// Parses a stored value: the provider name and the envelope.
    pub fn from_value(value: &[u8]) -> Result<(String, Envelope), EnvelopeError> {
        let rest = value
            .strip_prefix(KMS_V2_PREFIX)
            .ok_or_else(|| EnvelopeError::Malformed("no k8s:enc:kms:v2: prefix".into()))?;
        let colon = rest
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| EnvelopeError::Malformed("no provider name".into()))?;
        let provider = std::str::from_utf8(&rest[..colon])
            .map_err(|_| EnvelopeError::Malformed("provider name is not UTF-8".into()))?
            .to_string();
        let mut env = Envelope {
            encrypted_data: Vec::new(),
            key_id: String::new(),
            encrypted_dek_source: Vec::new(),
            encrypted_dek_source_type: 0,
        };
        let mut buf = &rest[colon + 1..];
        while !buf.is_empty() {
            let tag = get_varint(&mut buf)?;
            let (field, wire) = (tag >> 3, tag & 7);
            match wire {
                0 => {
                    let v = get_varint(&mut buf)?;
                    if field == 5 {
                        env.encrypted_dek_source_type = v;
                    }
                }
                2 => {
                    let len = usize::try_from(get_varint(&mut buf)?)
                        .map_err(|_| EnvelopeError::Malformed("length overflow".into()))?;
                    if len > buf.len() {
                        return Err(EnvelopeError::Malformed("truncated field".into()));
                    }
                    let (bytes, tail) = buf.split_at(len);
                    match field {
                        1 => env.encrypted_data = bytes.to_vec(),
                        2 => {
                            env.key_id = String::from_utf8(bytes.to_vec()).map_err(|_| {
                                EnvelopeError::Malformed("keyID is not UTF-8".into())
                            })?
                        }
                        3 => env.encrypted_dek_source = bytes.to_vec(),
                        _ => {} // annotations and fields we do not know
                    }
                    buf = tail;
                }
                1 | 5 => {
                    let n = if wire == 1 { 8 } else { 4 };
                    if n > buf.len() {
                        return Err(EnvelopeError::Malformed("truncated field".into()));
                    }
                    buf = &buf[n..];
                }
                _ => return Err(EnvelopeError::Malformed(format!("wire type {wire}"))),
            }
        }
        // Upstream's validation: every required field present.
        if env.encrypted_data.is_empty() {
            return Err(EnvelopeError::Malformed("encrypted data is empty".into()));
        }
        if env.key_id.is_empty() {
            return Err(EnvelopeError::Malformed("keyID is empty".into()));
        }
        if env.encrypted_dek_source.is_empty() {
            return Err(EnvelopeError::Malformed(
                "encrypted DEK source is empty".into(),
            ));
        }
        if env.encrypted_dek_source_type != DEK_SOURCE_AES_GCM_KEY {
            return Err(EnvelopeError::Malformed(format!(
                "unsupported encrypted DEK source type {}",
                env.encrypted_dek_source_type
            )));
        }
        Ok((provider, env))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, EnvelopeError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf
            .split_first()
            .ok_or_else(|| EnvelopeError::Malformed("truncated varint".into()))?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(EnvelopeError::Malformed("varint too long".into()))
}

/// An AES-256-GCM data encryption key. Seals with a fresh random nonce per value; the owner
/// rotates the DEK long before random nonces could repeat (see `MAX_WRITES_PER_DEK`).
#[doc(alias = "DEK")]
pub struct Dek(LessSafeKey);

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dek(..)")
    }
}

impl Dek {
    pub fn new(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() != DEK_LEN {
            return Err(EnvelopeError::BadDek(format!(
                "{} bytes, want {DEK_LEN}",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| EnvelopeError::BadDek("rejected by AES-256-GCM".into()))?;
        Ok(Dek(LessSafeKey::new(unbound)))
    }

    /// `nonce || ciphertext || tag` of `plaintext`, with `aad` (the storage key) authenticated.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| EnvelopeError::Random)?;
        let mut sealed = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed,
            )
            .map_err(|_| EnvelopeError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Dek::seal`] made under the same `aad`.
    pub fn open(&self, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(EnvelopeError::Malformed("encrypted data too short".into()));
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| EnvelopeError::Malformed("nonce".into()))?;
        let mut buf = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| EnvelopeError::Open)?;
        Ok(plain.to_vec())
    }
}

/// `DEK_LEN` random bytes (tests and callers that need a DEK without KMS).
pub fn random_dek_bytes() -> Result<[u8; DEK_LEN], EnvelopeError> {
    let mut out = [0u8; DEK_LEN];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| EnvelopeError::Random)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            encrypted_data: vec![7; 40],
            key_id: "arn:aws:kms:us-east-1:000000000000:key/abc".into(),
            encrypted_dek_source: vec![9; 300],
            encrypted_dek_source_type: DEK_SOURCE_AES_GCM_KEY,
        }
    }

    #[test]
    fn envelopes_round_trip_through_the_stored_form() {
        let env = sample();
        let value = env.to_value(PROVIDER_NAME);
        assert!(value.starts_with(b"k8s:enc:kms:v2:aws-encryption-provider:"));
        assert!(is_encrypted(&value));
        let (provider, back) = Envelope::from_value(&value).unwrap();
        assert_eq!(provider, PROVIDER_NAME);
        assert_eq!(back, env);
        // Field 1 of the protobuf follows the colon: tag 0x0a, length 40.
        let body = &value[KMS_V2_PREFIX.len() + PROVIDER_NAME.len() + 1..];
        assert_eq!(&body[..2], &[0x0a, 40]);
    }

    #[test]
    fn malformed_envelopes_are_refused_not_panicked_on() {
        let value = sample().to_value(PROVIDER_NAME);
        for cut in [KMS_V2_PREFIX.len() + 3, value.len() - 1, value.len() - 50] {
            assert!(Envelope::from_value(&value[..cut]).is_err(), "cut {cut}");
        }
        assert!(Envelope::from_value(b"{\"kind\":\"Secret\"}").is_err());
        let mut missing = sample();
        missing.key_id.clear();
        assert!(matches!(
            Envelope::from_value(&missing.to_value("p")),
            Err(EnvelopeError::Malformed(m)) if m.contains("keyID")
        ));
        let mut seeded = sample();
        seeded.encrypted_dek_source_type = 2;
        assert!(Envelope::from_value(&seeded.to_value("p")).is_err());
    }

    #[test]
    fn a_dek_opens_only_its_own_value_under_the_same_key() {
        let dek = Dek::new(&random_dek_bytes().unwrap()).unwrap();
        let sealed = dek.seal(b"/k8s/c/core/secrets/ns/a", b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            dek.open(b"/k8s/c/core/secrets/ns/a", &sealed).unwrap(),
            b"hunter2"
        );
        assert_eq!(
            dek.open(b"/k8s/c/core/secrets/ns/b", &sealed),
            Err(EnvelopeError::Open)
        );
        let other = Dek::new(&random_dek_bytes().unwrap()).unwrap();
        assert_eq!(
            other.open(b"/k8s/c/core/secrets/ns/a", &sealed),
            Err(EnvelopeError::Open)
        );
        // Two seals of one value differ (fresh nonces).
        assert_ne!(
            sealed,
            dek.seal(b"/k8s/c/core/secrets/ns/a", b"hunter2").unwrap()
        );
        assert!(Dek::new(&[0; 16]).is_err());
        assert!(dek.open(b"k", &[1, 2, 3]).is_err());
    }
}
