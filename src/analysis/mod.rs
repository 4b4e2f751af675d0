//! Offline analyses of a stack's declared resources: questions answered from what the
//! stack declares, before anything is applied, for stack `check`s (and, for scheduling,
//! the Kubernetes API simulator's scheduler).
//!
//! - [`network`]: whether traffic can flow between the parts of a declared VPC.
//! - [`scheduling`]: whether declared pod templates can be placed on declared node shapes,
//!   with kube-scheduler's filters and messages.
//! - [`instance_types`]: the EC2 instance-type table scheduling reads (vCPU, memory, local
//!   NVMe, EKS max pods), embedded at compile time.
//! - [`eks_addons`]: the pods EKS's managed add-ons run (CoreDNS, the node agents), as pod
//!   templates for scheduling.
//! - [`wiring`]: whether a value a process needs reaches it (environment variables from
//!   declared Secrets; container paths through hostPath mounts to the node).
//!
//! Each analysis states in its module doc the rules it keeps and what it does not model;
//! none needs a cargo feature, the network, or credentials.

pub mod eks_addons;
pub mod instance_types;
pub mod network;
pub mod scheduling;
pub mod wiring;
