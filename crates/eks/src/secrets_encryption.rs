//! EKS envelope encryption of Secrets with KMS (`encryptionConfig` on CreateCluster, or
//! AssociateEncryptionConfig later), in the shape of kube-apiserver's KMS v2 provider.
//!
//! [`EncryptedSecretsStore`] wraps the shared store for one cluster's control plane (API server,
//! controllers, token controller, integrations all get the wrapper). Writes of keys under
//! `/k8s/<id>/core/secrets/` are sealed with a data key (DEK) while the cluster's EKS record has an
//! `encryptionConfig` naming `secrets`; every read path (get, list and so every `RangeStream`,
//! watch events and their previous values, a transaction's previous values and a refused
//! precondition's current value) opens sealed values again, so nothing above the store changes.
//!
//! DEKs, as upstream: one write DEK made with KMS GenerateDataKey under the cluster's key, cached
//! and reused, replaced when the key (ARN or KMS material generation, i.e. a rotation) changes or
//! after [`MAX_WRITES_PER_DEK`] values; read DEKs cached by their encrypted form and otherwise
//! recovered with KMS Decrypt (what happens after a restart). KMS is called through the KMS domain
//! functions as the cluster's IAM role, so key state applies: before sealing, and before opening a
//! value read by a Secret-targeted get or list, the key's state is checked (the KMS v2 plugin's
//! Status), so a disabled key or one pending deletion fails Secret reads and writes with a 500
//! naming KMS, as on EKS. Reads over a wider prefix (the garbage collector watching the whole
//! cluster) use cached DEKs without the check and, when a DEK cannot be had, pass the sealed value
//! through unopened (it parses as no object) instead of failing every other kind with it.
//!
//! Plaintext values written before encryption was turned on stay readable;
//! [`EncryptedSecretsStore::encrypt_existing`] rewrites them sealed, which
//! [`EncryptedSecretsStore::spawn_reencryption`] runs whenever the EKS record gains an
//! `encryptionConfig` (EKS re-encrypts existing Secrets after AssociateEncryptionConfig).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use skiff_aws::context::{Caller, RequestContext};
use skiff_aws_model::AwsError;
use skiff_store::{
    KeyValue, ListOptions, ListResult, Op, Precondition, Revision, Store, StoreError, TxnResult,
    WatchStream,
};

use crate::cluster_dir::EksBinding;
use crate::secrets_encryption_envelope::{
    DEK_LEN, DEK_SOURCE_AES_GCM_KEY, Dek, Envelope, PROVIDER_NAME, is_encrypted,
};

/// A write DEK seals at most this many values before a new one is made: random 96-bit nonces stay
/// far below a collision risk of 2^-32 (NIST SP 800-38D §8.3), the bound upstream also keeps.
pub const MAX_WRITES_PER_DEK: u64 = 1 << 32;
/// Read DEKs kept; the cache is emptied when it would grow past this (each entry is one DEK).
const READ_CACHE_LIMIT: usize = 1024;

/// What the EKS record says about Secrets encryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretsKms {
    /// `encryptionConfig[].provider.keyArn` of the entry whose `resources` has `secrets`.
    pub key_arn: String,
    /// The cluster's IAM role: KMS calls are made as it.
    pub role_arn: String,
}

/// The Secrets entry of an EKS cluster record's `encryptionConfig`, if any.
pub fn secrets_kms_of(cluster: &Value) -> Option<SecretsKms> {
    let entries = cluster.get("encryptionConfig")?.as_array()?;
    entries.iter().find_map(|e| {
        let covers_secrets = e["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x.as_str() == Some("secrets")));
        let key_arn = e["provider"]["keyArn"].as_str()?;
        covers_secrets.then(|| SecretsKms {
            key_arn: key_arn.to_string(),
            role_arn: cluster["roleArn"].as_str().unwrap_or_default().to_string(),
        })
    })
}

/// The store key of an EKS cluster record (as `crates/aws/src/eks` writes it).
pub fn cluster_record_key(binding: &EksBinding) -> String {
    format!(
        "/aws/{}/{}/eks/cluster/{}",
        binding.account, binding.region, binding.name
    )
}

struct WriteDek {
    dek: Arc<Dek>,
    encrypted: Vec<u8>,
    key_arn: String,
    generation: usize,
    uses: u64,
}

struct Shared {
    inner: Arc<dyn Store>,
    secrets_prefix: String,
    record_key: String,
    binding: EksBinding,
    write_dek: tokio::sync::Mutex<Option<WriteDek>>,
    read_cache: std::sync::Mutex<HashMap<Vec<u8>, Arc<Dek>>>,
}

/// The store of one EKS cluster's control plane with its Secrets sealed by KMS. See the module docs.
#[doc(alias = "EnvelopeTransformer")]
#[doc(alias = "kmsv2")]
#[derive(Clone)]
pub struct EncryptedSecretsStore(Arc<Shared>);

/// Why a value could not be sealed or opened: a `StoreError` the registry answers with 500
/// `InternalError`, worded as kube-apiserver's envelope transformer and naming KMS.
fn kms_failure(what: &str, e: &AwsError) -> StoreError {
    StoreError::Io(format!(
        "{what}, error: KMS {}: {}",
        e.code,
        e.message.trim()
    ))
}

fn envelope_failure(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("failed to decrypt {key}: {e}"))
}

impl EncryptedSecretsStore {
    /// Wraps `inner` for the cluster with store id `cluster_id` serving the EKS record `binding`.
    pub fn new(inner: Arc<dyn Store>, cluster_id: &str, binding: &EksBinding) -> Self {
        EncryptedSecretsStore(Arc::new(Shared {
            inner,
            secrets_prefix: format!("/k8s/{cluster_id}/core/secrets/"),
            record_key: cluster_record_key(binding),
            binding: binding.clone(),
            write_dek: tokio::sync::Mutex::new(None),
            read_cache: std::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// The wrapped store (raw values: what an attacker with the data dir sees).
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.0.inner
    }

    /// The Secrets encryption the EKS record asks for now (None: write plaintext).
    pub async fn config(&self) -> Result<Option<SecretsKms>, StoreError> {
        let Some(kv) = self.0.inner.get(&self.0.record_key).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Value>(&kv.value)
            .ok()
            .as_ref()
            .and_then(secrets_kms_of))
    }

    /// A request context acting as the cluster's role (EKS calls KMS with it), or EKS's service
    /// role when the record is gone.
    fn kms_ctx(&self, role_arn: Option<&str>) -> RequestContext {
        let b = &self.0.binding;
        let role = role_arn
            .and_then(|a| a.rsplit('/').next())
            .filter(|r| !r.is_empty())
            .unwrap_or(crate::service_context::SERVICE_ROLE);
        RequestContext {
            account_id: b.account.clone(),
            region: b.region.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            caller: Caller {
                arn: format!(
                    "arn:aws:sts::{}:assumed-role/{role}/eks-secrets-encryption",
                    b.account
                ),
                user_id: "AROASKIFFEKSSECRETS:eks-secrets-encryption".to_string(),
                account_id: b.account.clone(),
                access_key_id: String::new(),
            },
            store: self.0.inner.clone(),
        }
    }

    fn is_secret_key(&self, key: &str) -> bool {
        key.starts_with(&self.0.secrets_prefix)
    }

    /// Seals `plaintext` for `key` with the current write DEK (made or replaced as needed).
    async fn seal(
        &self,
        key: &str,
        plaintext: &[u8],
        kms: &SecretsKms,
    ) -> Result<Bytes, StoreError> {
        let ctx = self.kms_ctx(Some(&kms.role_arn));
        let status = skiff_aws::kms::key_status(&ctx, &kms.key_arn)
            .await
            .map_err(|e| kms_failure("failed to encrypt DEK", &e))?;
        let mut guard = self.0.write_dek.lock().await;
        let fresh = guard.as_ref().is_none_or(|w| {
            w.key_arn != status.key_arn
                || w.generation != status.generation
                || w.uses >= MAX_WRITES_PER_DEK
        });
        if fresh {
            let made = skiff_aws::kms::generate_data_key_for(
                &ctx,
                &kms.key_arn,
                DEK_LEN,
                &BTreeMap::new(),
            )
            .await
            .map_err(|e| kms_failure("failed to generate DEK", &e))?;
            let dek = Arc::new(
                Dek::new(&made.plaintext).map_err(|e| StoreError::Io(format!("new DEK: {e}")))?,
            );
            self.remember(made.ciphertext_blob.clone(), dek.clone());
            *guard = Some(WriteDek {
                dek,
                encrypted: made.ciphertext_blob,
                key_arn: made.key_arn,
                generation: status.generation,
                uses: 0,
            });
        }
        let Some(w) = guard.as_mut() else {
            return Err(StoreError::Io("no write DEK".into()));
        };
        w.uses += 1;
        let encrypted_data = w
            .dek
            .seal(key.as_bytes(), plaintext)
            .map_err(|e| StoreError::Io(format!("failed to encrypt {key}: {e}")))?;
        let env = Envelope {
            encrypted_data,
            key_id: w.key_arn.clone(),
            encrypted_dek_source: w.encrypted.clone(),
            encrypted_dek_source_type: DEK_SOURCE_AES_GCM_KEY,
        };
        Ok(Bytes::from(env.to_value(PROVIDER_NAME)))
    }

    fn remember(&self, encrypted: Vec<u8>, dek: Arc<Dek>) {
        let mut cache = self.0.read_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= READ_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(encrypted, dek);
    }

    fn cached(&self, encrypted: &[u8]) -> Option<Arc<Dek>> {
        self.0
            .read_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(encrypted)
            .cloned()
    }

    /// Opens a sealed value. `checked` is Some for Secret-targeted reads: the key's state is
    /// checked once per key id per call (it collects the ids already checked).
    async fn open(
        &self,
        key: &str,
        value: &[u8],
        checked: Option<&mut HashSet<String>>,
    ) -> Result<Bytes, StoreError> {
        let (_, env) = Envelope::from_value(value).map_err(|e| envelope_failure(key, e))?;
        let ctx = self.kms_ctx(None);
        if let Some(checked) = checked
            && !checked.contains(&env.key_id)
        {
            skiff_aws::kms::key_status(&ctx, &env.key_id)
                .await
                .map_err(|e| kms_failure("failed to decrypt DEK", &e))?;
            checked.insert(env.key_id.clone());
        }
        let dek = match self.cached(&env.encrypted_dek_source) {
            Some(d) => d,
            None => {
                let (plain, _) =
                    skiff_aws::kms::decrypt(&ctx, &env.encrypted_dek_source, &BTreeMap::new())
                        .await
                        .map_err(|e| kms_failure("failed to decrypt DEK", &e))?;
                let dek = Arc::new(Dek::new(&plain).map_err(|e| envelope_failure(key, e))?);
                self.remember(env.encrypted_dek_source.clone(), dek.clone());
                dek
            }
        };
        dek.open(key.as_bytes(), &env.encrypted_data)
            .map(Bytes::from)
            .map_err(|e| envelope_failure(key, e))
    }

    /// `kv` with its value opened when it is a sealed Secret; errors fail the caller.
    async fn open_kv_strict(
        &self,
        mut kv: KeyValue,
        checked: &mut HashSet<String>,
    ) -> Result<KeyValue, StoreError> {
        if self.is_secret_key(&kv.key) && is_encrypted(&kv.value) {
            kv.value = self.open(&kv.key, &kv.value, Some(checked)).await?;
        }
        Ok(kv)
    }

    /// `kv` with its value opened when possible; a value that cannot be opened passes sealed.
    async fn open_kv_lenient(&self, mut kv: KeyValue) -> KeyValue {
        if self.is_secret_key(&kv.key) && is_encrypted(&kv.value) {
            match self.open(&kv.key, &kv.value, None).await {
                Ok(v) => kv.value = v,
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "secret left sealed"),
            }
        }
        kv
    }

    /// Rewrites every plaintext Secret sealed (guarded by its revision, so a concurrent update,
    /// itself sealed, wins). Returns how many were rewritten; does nothing while the record asks
    /// for no encryption.
    pub async fn encrypt_existing(&self) -> Result<usize, StoreError> {
        if self.config().await?.is_none() {
            return Ok(0);
        }
        let mut range =
            skiff_store::RangeStream::open(self.0.inner.clone(), &self.0.secrets_prefix, None, 0)
                .await?;
        let mut rewritten = 0;
        while let Some(page) = range.next_page().await? {
            for kv in page.into_iter().filter(|kv| !is_encrypted(&kv.value)) {
                let op = Op::Put {
                    key: kv.key,
                    value: kv.value,
                    precondition: Precondition::ModRevision(kv.mod_revision),
                };
                match self.txn(vec![op]).await {
                    Ok(_) => rewritten += 1,
                    Err(StoreError::PreconditionFailed { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(rewritten)
    }

    /// Seals existing Secrets now and every time the EKS record changes while it asks for
    /// encryption (AssociateEncryptionConfig), until `shutdown` flips.
    pub fn spawn_reencryption(
        &self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok(rev) = this.0.inner.current_revision().await else {
                    return;
                };
                match this.encrypt_existing().await {
                    Ok(n) if n > 0 => tracing::info!(
                        cluster = %this.0.binding.name, count = n, "existing Secrets encrypted with KMS"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "re-encrypting Secrets failed"),
                }
                let Ok(mut events) = this.0.inner.watch(&this.0.record_key, rev).await else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        ev = events.next() => match ev {
                            Some(Ok(ev)) if ev.kv.key == this.0.record_key => break,
                            Some(Ok(_)) => {}
                            // Cut off or compacted: look again from now.
                            _ => break,
                        },
                    }
                }
            }
        })
    }
}

#[async_trait::async_trait]
impl Store for EncryptedSecretsStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        match self.0.inner.get(key).await? {
            Some(kv) => Ok(Some(self.open_kv_strict(kv, &mut HashSet::new()).await?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let mut page = self.0.inner.list(prefix, opts).await?;
        if !page
            .items
            .iter()
            .any(|kv| self.is_secret_key(&kv.key) && is_encrypted(&kv.value))
        {
            return Ok(page);
        }
        let strict = prefix.starts_with(&self.0.secrets_prefix);
        let mut checked = HashSet::new();
        let mut items = Vec::with_capacity(page.items.len());
        for kv in page.items {
            items.push(if strict {
                self.open_kv_strict(kv, &mut checked).await?
            } else {
                self.open_kv_lenient(kv).await
            });
        }
        page.items = items;
        Ok(page)
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        self.0.inner.count(prefix).await
    }

    async fn txn(&self, mut ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        let touches = ops.iter().any(|op| self.is_secret_key(op.key()));
        if touches && let Some(kms) = self.config().await? {
            for op in &mut ops {
                if let Op::Put { key, value, .. } = op
                    && self.is_secret_key(key)
                {
                    *value = self.seal(key, value, &kms).await?;
                }
            }
        }
        match self.0.inner.txn(ops).await {
            Ok(mut result) if touches => {
                for prev in &mut result.previous {
                    if let Some(kv) = prev.take() {
                        *prev = Some(self.open_kv_lenient(kv).await);
                    }
                }
                Ok(result)
            }
            Ok(result) => Ok(result),
            Err(StoreError::PreconditionFailed {
                key,
                current: Some(kv),
            }) => Err(StoreError::PreconditionFailed {
                key,
                current: Some(self.open_kv_lenient(kv).await),
            }),
            Err(e) => Err(e),
        }
    }

    async fn watch(
        &self,
        prefix: &str,
        from_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        let inner = self.0.inner.watch(prefix, from_revision).await?;
        let covers_secrets =
            self.0.secrets_prefix.starts_with(prefix) || prefix.starts_with(&self.0.secrets_prefix);
        if !covers_secrets {
            return Ok(inner);
        }
        let this = self.clone();
        Ok(Box::pin(inner.then(move |ev| {
            let this = this.clone();
            async move {
                let mut ev = ev?;
                ev.kv = this.open_kv_lenient(ev.kv).await;
                if let Some(prev) = ev.prev.take() {
                    ev.prev = Some(this.open_kv_lenient(prev).await);
                }
                Ok(ev)
            }
        })))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.0.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.0.inner.compacted_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.0.inner.compact(revision).await
    }
}

/// The store a cluster's control plane should use: EKS-backed planes get the encrypting wrapper
/// (it seals only while the record asks for it, so clusters that get AssociateEncryptionConfig
/// later are covered), bare planes the shared store itself.
pub fn store_for_plane(
    inner: Arc<dyn Store>,
    cluster_id: &str,
    binding: Option<&EksBinding>,
) -> (Arc<dyn Store>, Option<EncryptedSecretsStore>) {
    match binding {
        Some(b) => {
            let wrapped = EncryptedSecretsStore::new(inner, cluster_id, b);
            (Arc::new(wrapped.clone()), Some(wrapped))
        }
        None => (inner, None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_secrets_entry_of_encryption_config_is_found() {
        let rec = json!({
            "roleArn": "arn:aws:iam::000000000000:role/eks",
            "encryptionConfig": [
                {"resources": ["configmaps"], "provider": {"keyArn": "k0"}},
                {"resources": ["secrets"], "provider": {"keyArn": "k1"}},
            ]
        });
        assert_eq!(
            secrets_kms_of(&rec),
            Some(SecretsKms {
                key_arn: "k1".into(),
                role_arn: "arn:aws:iam::000000000000:role/eks".into()
            })
        );
        assert_eq!(secrets_kms_of(&json!({"name": "c"})), None);
        assert_eq!(
            secrets_kms_of(&json!({"encryptionConfig": [{"resources": ["secrets"]}]})),
            None
        );
    }
}
