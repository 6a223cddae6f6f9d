//! The `batch/v1` group.

pub mod cron_job;
pub mod job;
