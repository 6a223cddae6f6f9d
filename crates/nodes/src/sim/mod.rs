//! The simulated kubelet (`skiff.dev/node-agent: sim`).

pub mod duration;
pub mod engine;
pub mod hash;
pub mod ip_allocation;
pub mod node;
pub mod runtime;
pub mod stage;
pub mod timer;
pub mod trace;

pub use ip_allocation::CidrPodNetwork;
pub use runtime::{Clock, SimConfig, SimHandle, SystemClock, spawn_sim};
