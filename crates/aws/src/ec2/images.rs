//! DescribeImages over the public images EKS users pick from (Amazon Linux 2023 and 2, the EKS
//! optimized AMIs per Kubernetes version, Bottlerocket, Ubuntu), so `data "aws_ami"` lookups and
//! terraform's image reads work.
//!
//! The catalog is data ([`CATALOG`]): names, owners and architectures follow the real images'
//! naming; the ids are Skiff's own, derived from region and name (`ami-` + 17 hex of a SHA-256), so
//! they are stable across restarts and differ per region as on AWS. `RunInstances` accepts any
//! well-formed `ami-` id (Skiff boots nothing from it).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use skiff_aws_model::AwsError;

use super::common::{self, str_list};
use super::errors::{self, error};
use super::{filters, pagination};
use crate::context::RequestContext;

/// One public image: (name, owner account, owner alias, architecture, root volume GiB, description).
type Image = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    &'static str,
);

const AMAZON: &str = "137112412989";
const EKS: &str = "602401143452";
const CANONICAL: &str = "099720109477";
const BOTTLEROCKET: &str = "092701018921";

/// The images, as `aws ec2 describe-images --owners amazon` names them (build date 2025-11-10).
pub(crate) const CATALOG: &[Image] = &[
    (
        "al2023-ami-2023.9.20251110.0-kernel-6.1-x86_64",
        AMAZON,
        "amazon",
        "x86_64",
        8,
        "Amazon Linux 2023 AMI 2023.9.20251110.0 x86_64 HVM kernel-6.1",
    ),
    (
        "al2023-ami-2023.9.20251110.0-kernel-6.1-arm64",
        AMAZON,
        "amazon",
        "arm64",
        8,
        "Amazon Linux 2023 AMI 2023.9.20251110.0 arm64 HVM kernel-6.1",
    ),
    (
        "amzn2-ami-hvm-2.0.20251110.0-x86_64-gp2",
        AMAZON,
        "amazon",
        "x86_64",
        8,
        "Amazon Linux 2 AMI 2.0.20251110.0 x86_64 HVM gp2",
    ),
    (
        "amzn2-ami-hvm-2.0.20251110.0-arm64-gp2",
        AMAZON,
        "amazon",
        "arm64",
        8,
        "Amazon Linux 2 AMI 2.0.20251110.0 arm64 HVM gp2",
    ),
    (
        "amazon-eks-node-al2023-x86_64-standard-1.31-v20251110",
        EKS,
        "amazon",
        "x86_64",
        20,
        "EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: 1.31, containerd)",
    ),
    (
        "amazon-eks-node-al2023-x86_64-standard-1.32-v20251110",
        EKS,
        "amazon",
        "x86_64",
        20,
        "EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: 1.32, containerd)",
    ),
    (
        "amazon-eks-node-al2023-x86_64-standard-1.33-v20251110",
        EKS,
        "amazon",
        "x86_64",
        20,
        "EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: 1.33, containerd)",
    ),
    (
        "amazon-eks-node-al2023-arm64-standard-1.33-v20251110",
        EKS,
        "amazon",
        "arm64",
        20,
        "EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: 1.33, containerd)",
    ),
    (
        "amazon-eks-node-al2023-x86_64-nvidia-1.33-v20251110",
        EKS,
        "amazon",
        "x86_64",
        20,
        "EKS-optimized Kubernetes node based on Amazon Linux 2023 with NVIDIA drivers, (k8s: 1.33, containerd)",
    ),
    (
        "amazon-eks-node-1.31-v20251110",
        EKS,
        "amazon",
        "x86_64",
        20,
        "EKS Kubernetes Worker AMI with AmazonLinux2 image, (k8s: 1.31, containerd)",
    ),
    (
        "amazon-eks-node-1.32-v20251110",
        EKS,
        "amazon",
        "x86_64",
        20,
        "EKS Kubernetes Worker AMI with AmazonLinux2 image, (k8s: 1.32, containerd)",
    ),
    (
        "bottlerocket-aws-k8s-1.33-x86_64-v1.50.0-a1b2c3d4",
        BOTTLEROCKET,
        "amazon",
        "x86_64",
        2,
        "bottlerocket-aws-k8s-1.33-x86_64-v1.50.0-a1b2c3d4",
    ),
    (
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251110",
        CANONICAL,
        "",
        "x86_64",
        8,
        "Canonical, Ubuntu, 24.04, amd64 noble image",
    ),
    (
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251110",
        CANONICAL,
        "",
        "arm64",
        8,
        "Canonical, Ubuntu, 24.04, arm64 noble image",
    ),
];

const FILTERS: &[(&str, &str)] = &[
    ("architecture", "Architecture"),
    ("description", "Description"),
    ("image-id", "ImageId"),
    ("image-type", "ImageType"),
    ("is-public", "Public"),
    ("name", "Name"),
    ("owner-alias", "ImageOwnerAlias"),
    ("owner-id", "OwnerId"),
    ("platform-details", "PlatformDetails"),
    ("root-device-type", "RootDeviceType"),
    ("root-device-name", "RootDeviceName"),
    ("state", "State"),
    ("virtualization-type", "VirtualizationType"),
    ("hypervisor", "Hypervisor"),
    ("ena-support", "EnaSupport"),
    (
        "block-device-mapping.volume-size",
        "BlockDeviceMappings.Ebs.VolumeSize",
    ),
    (
        "block-device-mapping.volume-type",
        "BlockDeviceMappings.Ebs.VolumeType",
    ),
    (
        "block-device-mapping.device-name",
        "BlockDeviceMappings.DeviceName",
    ),
];

/// `ami-` + 17 hex digits, stable for a region and name.
fn derived_id(prefix: &str, region: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{region}/{name}").as_bytes());
    format!("{prefix}-{}", &hex::encode(digest)[..17])
}

fn render(region: &str, image: &Image) -> Value {
    let (name, owner, alias, arch, size, description) = *image;
    let root = "/dev/xvda";
    let mut v = json!({
        "ImageId": derived_id("ami", region, name),
        "ImageLocation": format!("{}/{name}", if alias.is_empty() { owner } else { alias }),
        "State": "available",
        "OwnerId": owner,
        "CreationDate": "2025-11-10T21:44:12.000Z",
        "DeprecationTime": "2027-11-10T21:44:12.000Z",
        "Public": true,
        "Architecture": arch,
        "ImageType": "machine",
        "Name": name,
        "Description": description,
        "RootDeviceType": "ebs",
        "RootDeviceName": root,
        "BlockDeviceMappings": [{
            "DeviceName": root,
            "Ebs": {
                "DeleteOnTermination": true,
                "SnapshotId": derived_id("snap", region, name),
                "VolumeSize": size,
                "VolumeType": "gp3",
                "Encrypted": false,
            },
        }],
        "VirtualizationType": "hvm",
        "Hypervisor": "xen",
        "EnaSupport": true,
        "SriovNetSupport": "simple",
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "BootMode": if arch == "arm64" { "uefi" } else { "uefi-preferred" },
        "ImdsSupport": "v2.0",
    });
    if !alias.is_empty() {
        v["ImageOwnerAlias"] = json!(alias);
    }
    v
}

/// `Owners`: `self`, `amazon`, `aws-marketplace` or account ids.
fn owned_by(image: &Value, owners: &[String], account: &str) -> bool {
    owners.is_empty()
        || owners.iter().any(|o| match o.as_str() {
            "self" => image["OwnerId"] == account,
            alias @ ("amazon" | "aws-marketplace") => image["ImageOwnerAlias"] == alias,
            id => image["OwnerId"] == id,
        })
}

#[doc(alias = "DescribeImages")]
pub(crate) async fn describe_images(ctx: &RequestContext, input: Value) -> Result<Value, AwsError> {
    let ids = str_list(&input, "ImageIds");
    if let Some(bad) = ids.iter().find(|id| !common::well_formed(id, "ami")) {
        return Err(error("InvalidAMIID.Malformed", &[("id", bad)]));
    }
    let owners = str_list(&input, "Owners");
    let filters = filters::parse(&input, FILTERS)?;
    let all: Vec<Value> = CATALOG.iter().map(|i| render(&ctx.region, i)).collect();
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| !all.iter().any(|i| i["ImageId"] == id.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(errors::not_found(
            "InvalidAMIID.NotFound",
            &missing.join(", "),
        ));
    }
    let mut items: Vec<Value> = all
        .into_iter()
        .filter(|i| ids.is_empty() || ids.iter().any(|id| i["ImageId"] == id.as_str()))
        .filter(|i| owned_by(i, &owners, &ctx.account_id))
        .filter(|i| filters::matches(i, &filters, FILTERS, "Tags"))
        .collect();
    items.sort_by(|a, b| a["ImageId"].as_str().cmp(&b["ImageId"].as_str()));
    let (page, next) = pagination::page(items, "ImageId", &input, (5, 1000))?;
    Ok(common::listing("Images", page, next))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, err, ok};
    use serde_json::json;

    #[tokio::test]
    async fn the_eks_optimized_image_is_found_by_name_and_owner() {
        let c = ctx();
        let out = ok(
            &c,
            "DescribeImages",
            json!({"Owners": ["amazon"], "Filters": [
                {"Name": "name", "Values": ["amazon-eks-node-al2023-x86_64-standard-1.33-*"]},
                {"Name": "architecture", "Values": ["x86_64"]}]}),
        )
        .await;
        let images = out["Images"].as_array().unwrap();
        assert_eq!(images.len(), 1);
        let id = images[0]["ImageId"].as_str().unwrap();
        assert!(id.starts_with("ami-") && id.len() == 21, "{id}");
        assert_eq!(images[0]["OwnerId"], "602401143452");
        let again = ok(&c, "DescribeImages", json!({"ImageIds": [id]})).await;
        assert_eq!(again["Images"][0]["Name"], images[0]["Name"]);
        // Canonical's images carry no owner alias: `--owners amazon` leaves them out.
        let ubuntu = ok(&c, "DescribeImages", json!({"Owners": ["099720109477"]})).await;
        assert_eq!(ubuntu["Images"].as_array().unwrap().len(), 2);
        let none = ok(&c, "DescribeImages", json!({"Owners": ["self"]})).await;
        assert!(none["Images"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn unknown_and_malformed_ids_are_refused() {
        let c = ctx();
        let e = err(
            &c,
            "DescribeImages",
            json!({"ImageIds": ["ami-0123456789abcdef0"]}),
        )
        .await;
        assert_eq!(e.code, "InvalidAMIID.NotFound");
        let e = err(&c, "DescribeImages", json!({"ImageIds": ["bogus"]})).await;
        assert_eq!(e.code, "InvalidAMIID.Malformed");
        let e = err(
            &c,
            "DescribeImages",
            json!({"Filters": [{"Name": "colour", "Values": ["x"]}]}),
        )
        .await;
        assert_eq!(e.code, "InvalidParameterValue");
    }
}
