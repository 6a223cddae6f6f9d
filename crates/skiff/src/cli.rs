//! The command-line contract (design.md §2). Tests, scripts and docs rely on it: extend, never break.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "skiff",
    version,
    about = "Amazon EKS and the AWS it stands on, on one machine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the AWS gateway and every restored cluster until SIGINT/SIGTERM.
    Up(UpArgs),
    /// Print an admin kubeconfig (client certificate) for a cluster to stdout.
    Kubeconfig(KubeconfigArgs),
    /// Benchmarks (design.md §7), printing figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Would FROM reach TO:PORT? NetworkPolicies and security groups for pods of an EKS cluster,
    /// judged by a running Skiff; exit 0 allowed, 1 denied, 2 error.
    Netcheck(NetcheckArgs),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// One cluster API on the embedded store: start-up, durable pod creates at 1 and N clients, GET, LIST.
    Api(BenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Pods created by the single client.
    #[arg(long, default_value_t = 2000)]
    pub creates_single: usize,
    /// Pods created by the concurrent clients.
    #[arg(long, default_value_t = 20000)]
    pub creates: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 256)]
    pub clients: usize,
    /// Instead of the default figures: LIST this many pods (JSON and Table), with the time and
    /// the peak extra RSS of the process while the list streams.
    #[arg(long, default_value_t = 0)]
    pub list_pods: usize,
    /// Instead of the default figures: this many API watchers on pods while `--watch-writes`
    /// pods are created; delivery latency (from the create's answer) and events per second.
    #[arg(long, default_value_t = 0)]
    pub watchers: usize,
    /// Pods created while `--watchers` watch.
    #[arg(long, default_value_t = 5000)]
    pub watch_writes: usize,
}

#[derive(Args, Debug, Clone)]
pub struct DataDirArgs {
    /// Where state lives. Default: `$XDG_DATA_HOME/skiff` (or `~/.local/share/skiff`); `./.skiff` with `--local`.
    #[arg(long, env = "SKIFF_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep state in `./.skiff`.
    #[arg(long)]
    pub local: bool,
}

impl DataDirArgs {
    pub fn resolve(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if self.local {
            return PathBuf::from(".skiff");
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("skiff");
        }
        match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local/share/skiff"),
            None => PathBuf::from(".skiff"),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Address of the AWS gateway (every service).
    #[arg(long, default_value = "127.0.0.1:4566")]
    pub listen: SocketAddr,
    /// First port tried for each cluster's Kubernetes API; 0 = any free port.
    #[arg(long, default_value_t = 6443)]
    pub cluster_port_base: u16,
    /// Store backend: `embedded` (default) or `etcd://host:port[,host:port…]`.
    #[arg(long, default_value = "embedded")]
    pub store: String,
    /// Accept any access key as the root user (LocalStack's leniency); signatures are then not checked.
    #[arg(long)]
    pub any_credentials: bool,
    /// Judge every signed AWS call by the caller's IAM policies (root is always allowed).
    #[arg(long)]
    pub enforce_iam: bool,
    /// Create (idempotently) the demo cluster `demo` before serving.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Args, Debug, Clone)]
pub struct KubeconfigArgs {
    /// Cluster name.
    pub cluster: String,
    #[command(flatten)]
    pub data: DataDirArgs,
}

#[derive(Args, Debug, Clone)]
pub struct NetcheckArgs {
    /// EKS cluster name.
    #[arg(long)]
    pub cluster: String,
    /// The cluster's region (default: us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Skiff's gateway.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:4566"
    )]
    pub endpoint: String,
    /// TCP, UDP or SCTP.
    #[arg(long, default_value = "TCP")]
    pub protocol: String,
    /// The source: NAMESPACE/POD, POD (in default) or an IP address.
    pub from: String,
    /// The destination and port: NAMESPACE/POD:PORT, POD:PORT, svc/NAMESPACE/NAME:PORT or IP:PORT.
    #[arg(value_name = "TO:PORT")]
    pub target: String,
}
