//! The two backends behind [`crate::Store`]: [`embedded`] (redb, the default) and [`etcd`] (etcd v3,
//! for several Skiff processes sharing one keyspace). Both pass `tests/contract.rs`.

pub mod embedded;
pub mod etcd;
mod record;
