//! `skiff kubeconfig CLUSTER`: an admin kubeconfig from the cluster's files (works while `skiff up` runs).

use anyhow::{Context, bail};
use skiff_apiserver::pki::ClusterPki;
use skiff_eks::cluster_dir;

use crate::cli::KubeconfigArgs;

pub fn run(args: &KubeconfigArgs) -> anyhow::Result<()> {
    let data_dir = args.data.resolve();
    let Some(record) = cluster_dir::read_record(&data_dir, &args.cluster)? else {
        bail!(
            "no cluster named '{}' in {}",
            args.cluster,
            data_dir.display()
        );
    };
    let pki = ClusterPki::load(&cluster_dir::pki_dir(&data_dir, &record.name), &record.name)
        .with_context(|| format!("loading the PKI of cluster '{}'", record.name))?;
    let (cert, key) = pki
        .issue_admin_cert()
        .context("issuing the admin client certificate")?;
    let server = format!("https://127.0.0.1:{}", record.port);
    print!(
        "{}",
        skiff_eks::kubeconfig::admin_kubeconfig(
            &record.name,
            &server,
            &pki.ca_cert_pem,
            &cert,
            &key
        )
    );
    Ok(())
}
