//! The transaction rules both backends enforce, so that they agree on the contract: which op lists are
//! valid, and what each [`Precondition`] means against a key's current state.

use std::collections::HashSet;

use crate::{KeyValue, Op, Precondition, StoreError};

impl Op {
    /// The key this op writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    /// The guard checked before this op.
    pub fn precondition(&self) -> Precondition {
        match self {
            Op::Put { precondition, .. } | Op::Delete { precondition, .. } => *precondition,
        }
    }
}

impl Precondition {
    /// Whether the guard holds for a key whose current state is `current`.
    pub fn holds(self, current: Option<&KeyValue>) -> bool {
        match self {
            Precondition::None => true,
            Precondition::MustNotExist => current.is_none(),
            Precondition::MustExist => current.is_some(),
            Precondition::ModRevision(rev) => current.is_some_and(|kv| kv.mod_revision == rev),
        }
    }
}

/// Refuses op lists that etcd refuses (so the embedded backend does not accept more than etcd):
/// an empty key ("key is not provided") and the same key twice in one transaction ("duplicate key
/// given in txn request"), which would make the preconditions of the second op ambiguous.
pub(crate) fn validate(ops: &[Op]) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(ops.len());
    for op in ops {
        let key = op.key();
        if key.is_empty() {
            return Err(StoreError::InvalidArgument("key is not provided".into()));
        }
        if !seen.insert(key) {
            return Err(StoreError::InvalidArgument(format!(
                "duplicate key given in txn request: {key}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn kv(rev: i64) -> KeyValue {
        KeyValue {
            key: "k".into(),
            value: Bytes::new(),
            create_revision: rev,
            mod_revision: rev,
        }
    }

    #[test]
    fn preconditions_hold_as_documented() {
        assert!(Precondition::None.holds(None));
        assert!(Precondition::MustNotExist.holds(None));
        assert!(!Precondition::MustNotExist.holds(Some(&kv(2))));
        assert!(Precondition::MustExist.holds(Some(&kv(2))));
        assert!(!Precondition::MustExist.holds(None));
        assert!(Precondition::ModRevision(2).holds(Some(&kv(2))));
        assert!(!Precondition::ModRevision(3).holds(Some(&kv(2))));
        // An absent key has no revision, not revision 0.
        assert!(!Precondition::ModRevision(0).holds(None));
    }

    #[test]
    fn validate_refuses_empty_and_duplicate_keys() {
        let put = |k: &str| Op::Put {
            key: k.into(),
            value: Bytes::new(),
            precondition: Precondition::None,
        };
        assert!(validate(&[put("a"), put("b")]).is_ok());
        assert!(matches!(
            validate(&[put("")]),
            Err(StoreError::InvalidArgument(_))
        ));
        let dup = [
            put("a"),
            Op::Delete {
                key: "a".into(),
                precondition: Precondition::None,
            },
        ];
        assert!(
            matches!(validate(&dup), Err(StoreError::InvalidArgument(m)) if m.contains("duplicate"))
        );
    }
}
