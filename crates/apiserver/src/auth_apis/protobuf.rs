//! Superseded: protobuf request bodies of every kind, the review and token kinds included, are
//! decoded once at the HTTP edge by `skiff_k8s_core::protobuf::decode_body`. This file stays empty
//! only because `auth_apis/mod.rs` (owned elsewhere) still declares the module; delete both.
