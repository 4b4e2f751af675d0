//! The `spar-kube-sim` binary: runs the simulator standalone until interrupted.
//!
//! Owns command-line parsing only. Prints exactly one line, `spar-kube-sim listening on
//! http://127.0.0.1:PORT`, once the socket is bound and the schemas are loaded, so scripts can
//! wait for it; exits non-zero with a message when it cannot start.

use clap::Parser;
use spar_kube_sim::{DEFAULT_K8S_VERSION, DEFAULT_NODE_INSTANCE_TYPE, SimConfig, Simulator};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// An in-memory Kubernetes API server for spar's sandbox (plain HTTP on 127.0.0.1).
#[derive(Debug, Parser)]
#[command(name = "spar-kube-sim", version)]
struct Args {
    /// Port on 127.0.0.1 (0 = pick a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Schema directory (kubernetes-validate's `vX.Y.0-local-strict`); default: found in the repo's .venv.
    #[arg(long)]
    schemas: Option<PathBuf>,
    /// Milliseconds from a workload spec change until its status reports ready.
    #[arg(long, default_value_t = 0)]
    ready_delay_ms: u64,
    /// Kubernetes version to claim and validate against.
    #[arg(long, default_value = DEFAULT_K8S_VERSION)]
    k8s_version: String,
    /// Static nodes that exist from the start (0 with --aws-endpoint: nodes join from node groups).
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// Instance type of the static nodes.
    #[arg(long, default_value = DEFAULT_NODE_INSTANCE_TYPE)]
    node_instance_type: String,
    /// The sandbox AWS emulator (http://127.0.0.1:PORT): its managed node groups' nodes join,
    /// its add-ons' workloads are installed.
    #[arg(long)]
    aws_endpoint: Option<String>,
    /// With --aws-endpoint: only this EKS cluster's node groups and add-ons.
    #[arg(long)]
    eks_cluster: Option<String>,
    /// Also write a kubeconfig pointing at the simulator to this file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let cfg = SimConfig {
        port: args.port,
        schema_dir: args.schemas,
        ready_delay: Duration::from_millis(args.ready_delay_ms),
        k8s_version: args.k8s_version,
        nodes: args.nodes,
        node_instance_type: args.node_instance_type,
        aws_endpoint: args.aws_endpoint,
        eks_cluster: args.eks_cluster,
    };
    let sim = match Simulator::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("spar-kube-sim: {e}");
            std::process::exit(1);
        }
    };
    if let Some(path) = &args.kubeconfig
        && let Err(e) = std::fs::write(path, sim.kubeconfig())
    {
        eprintln!("spar-kube-sim: cannot write kubeconfig {}: {e}", path.display());
        std::process::exit(1);
    }
    println!("spar-kube-sim listening on {}", sim.url());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
}
