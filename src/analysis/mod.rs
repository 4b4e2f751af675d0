//! Offline analyses of a stack's declared resources: questions answered from what the
//! stack declares, before anything is applied, for stack `check`s (and, for scheduling,
//! the Kubernetes API simulator's scheduler).
//!
//! - [`network`]: whether traffic can flow between the parts of a declared VPC.
//! - [`scheduling`]: whether declared pod templates can be placed on declared node shapes,
//!   with kube-scheduler's filters and messages.
//! - [`instance_types`]: the EC2 instance-type table scheduling reads (vCPU, memory, local
//!   NVMe, EKS max pods, us-east-1 on-demand price), embedded at compile time.
//! - [`eks_addons`]: the pods EKS's managed add-ons run (CoreDNS, the node agents), as pod
//!   templates for scheduling.
//! - [`wiring`]: whether a value a process needs reaches it (environment variables from
//!   declared Secrets; container paths through hostPath mounts to the node).
//!
//! Each analysis states in its module doc the rules it keeps and what it does not model;
//! none needs a cargo feature, the network, or credentials.
//!
//! `scheduling`, `instance_types` and `eks_addons` live in the workspace crate `spar-scheduling`
//! (`crates/scheduling`), re-exported here, because the sandbox's API simulator binds pods
//! with the same code and must not depend on the engine.

pub use spar_scheduling::eks_addons;
pub use spar_scheduling::instance_types;
pub mod network;
/// Scheduling feasibility with kube-scheduler's filters: the `spar-scheduling` crate,
/// which the sandbox's Kubernetes API simulator shares (so both judge pods alike).
pub mod scheduling {
    pub use spar_scheduling::*;
}
pub mod wiring;
