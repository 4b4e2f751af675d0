//! AWS resource kinds (ec2, iam, eks, sqs, events) on the official SDK crates.

use crate::provider::Registry;

/// Adds the AWS kinds to `registry`.
pub fn register(_registry: &mut Registry) {}
