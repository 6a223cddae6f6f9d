//! Instance types: a data table of the common families (published AWS figures: vCPUs, memory,
//! network interfaces, IPv4/IPv6 addresses per interface, network performance, GPUs) behind
//! DescribeInstanceTypes and [`instance_type`], which the EKS layer reads for Node capacity and
//! `maxPods = ENIs * (IPv4 per ENI - 1) + 2`.

use serde_json::{Value, json};
use skiff_aws_model::AwsError;

use super::common::{self, str_list};
use super::errors::error;
use super::{filters, pagination};
use crate::context::RequestContext;

/// One instance type's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceTypeInfo {
    pub name: &'static str,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Across all network cards (p4d: 4 cards x 15).
    pub maximum_network_interfaces: u32,
    pub network_cards: u32,
    pub ipv4_addresses_per_interface: u32,
    pub ipv6_addresses_per_interface: u32,
    pub network_performance: &'static str,
    pub processor: &'static str,
    pub burstable: bool,
    /// (count, model, memory per GPU in MiB)
    pub gpus: Option<(u32, &'static str, u64)>,
}

impl InstanceTypeInfo {
    /// The EKS AMI's default max pods for the VPC CNI (interfaces of the primary card).
    pub fn max_pods(&self) -> u32 {
        let enis = self.maximum_network_interfaces / self.network_cards.max(1);
        enis * (self.ipv4_addresses_per_interface - 1) + 2
    }
}

const fn it(
    name: &'static str,
    vcpus: u32,
    memory_mib: u64,
    enis: u32,
    ipv4: u32,
    net: &'static str,
    processor: &'static str,
) -> InstanceTypeInfo {
    InstanceTypeInfo {
        name,
        vcpus,
        memory_mib,
        maximum_network_interfaces: enis,
        network_cards: 1,
        ipv4_addresses_per_interface: ipv4,
        ipv6_addresses_per_interface: ipv4,
        network_performance: net,
        processor,
        burstable: false,
        gpus: None,
    }
}

const fn burst(t: InstanceTypeInfo) -> InstanceTypeInfo {
    InstanceTypeInfo {
        burstable: true,
        ..t
    }
}

const fn gpu(t: InstanceTypeInfo, count: u32, model: &'static str, mib: u64) -> InstanceTypeInfo {
    InstanceTypeInfo {
        gpus: Some((count, model, mib)),
        ..t
    }
}

const INTEL: &str = "Intel Xeon Platinum 8175";
const INTEL_C5: &str = "Intel Xeon Platinum 8124M";
const AMD_T3A: &str = "AMD EPYC 7571";
const ICE: &str = "Intel Xeon 8375C";
const SPR: &str = "Intel Xeon Sapphire Rapids";
const G5CPU: &str = "AMD EPYC 7R32";
const U5: &str = "Up to 5 Gigabit";
const U10: &str = "Up to 10 Gigabit";
const U12: &str = "Up to 12.5 Gigabit";

/// The table, sorted by name (DescribeInstanceTypes pages in this order).
pub static INSTANCE_TYPES: &[InstanceTypeInfo] = &[
    it("c5.12xlarge", 48, 98304, 8, 30, "12 Gigabit", INTEL_C5),
    it("c5.18xlarge", 72, 147456, 15, 50, "25 Gigabit", INTEL_C5),
    it("c5.24xlarge", 96, 196608, 15, 50, "25 Gigabit", INTEL_C5),
    it("c5.2xlarge", 8, 16384, 4, 15, U10, INTEL_C5),
    it("c5.4xlarge", 16, 32768, 8, 30, U10, INTEL_C5),
    it("c5.9xlarge", 36, 73728, 8, 30, "12 Gigabit", INTEL_C5),
    it("c5.large", 2, 4096, 3, 10, U10, INTEL_C5),
    it("c5.xlarge", 4, 8192, 4, 15, U10, INTEL_C5),
    it("c6i.12xlarge", 48, 98304, 8, 30, "18.75 Gigabit", ICE),
    it("c6i.16xlarge", 64, 131072, 15, 50, "25 Gigabit", ICE),
    it("c6i.24xlarge", 96, 196608, 15, 50, "37.5 Gigabit", ICE),
    it("c6i.2xlarge", 8, 16384, 4, 15, U12, ICE),
    it("c6i.32xlarge", 128, 262144, 15, 50, "50 Gigabit", ICE),
    it("c6i.4xlarge", 16, 32768, 8, 30, U12, ICE),
    it("c6i.8xlarge", 32, 65536, 8, 30, "12.5 Gigabit", ICE),
    it("c6i.large", 2, 4096, 3, 10, U12, ICE),
    it("c6i.xlarge", 4, 8192, 4, 15, U12, ICE),
    it("c7i.12xlarge", 48, 98304, 8, 30, "18.75 Gigabit", SPR),
    it("c7i.16xlarge", 64, 131072, 15, 50, "25 Gigabit", SPR),
    it("c7i.24xlarge", 96, 196608, 15, 50, "37.5 Gigabit", SPR),
    it("c7i.2xlarge", 8, 16384, 4, 15, U12, SPR),
    it("c7i.48xlarge", 192, 393216, 15, 50, "50 Gigabit", SPR),
    it("c7i.4xlarge", 16, 32768, 8, 30, U12, SPR),
    it("c7i.8xlarge", 32, 65536, 8, 30, "12.5 Gigabit", SPR),
    it("c7i.large", 2, 4096, 3, 10, U12, SPR),
    it("c7i.xlarge", 4, 8192, 4, 15, U12, SPR),
    gpu(
        it("g5.12xlarge", 48, 196608, 15, 50, "40 Gigabit", G5CPU),
        4,
        "A10G",
        24576,
    ),
    gpu(
        it("g5.16xlarge", 64, 262144, 8, 30, "25 Gigabit", G5CPU),
        1,
        "A10G",
        24576,
    ),
    gpu(
        it("g5.24xlarge", 96, 393216, 15, 50, "50 Gigabit", G5CPU),
        4,
        "A10G",
        24576,
    ),
    gpu(
        it("g5.2xlarge", 8, 32768, 4, 15, U10, G5CPU),
        1,
        "A10G",
        24576,
    ),
    gpu(
        it("g5.48xlarge", 192, 786432, 7, 50, "100 Gigabit", G5CPU),
        8,
        "A10G",
        24576,
    ),
    gpu(
        it("g5.4xlarge", 16, 65536, 8, 30, "Up to 25 Gigabit", G5CPU),
        1,
        "A10G",
        24576,
    ),
    gpu(
        it("g5.8xlarge", 32, 131072, 8, 30, "25 Gigabit", G5CPU),
        1,
        "A10G",
        24576,
    ),
    gpu(
        it("g5.xlarge", 4, 16384, 4, 15, U10, G5CPU),
        1,
        "A10G",
        24576,
    ),
    it("m5.12xlarge", 48, 196608, 8, 30, "12 Gigabit", INTEL),
    it("m5.16xlarge", 64, 262144, 15, 50, "20 Gigabit", INTEL),
    it("m5.24xlarge", 96, 393216, 15, 50, "25 Gigabit", INTEL),
    it("m5.2xlarge", 8, 32768, 4, 15, U10, INTEL),
    it("m5.4xlarge", 16, 65536, 8, 30, U10, INTEL),
    it("m5.8xlarge", 32, 131072, 8, 30, "10 Gigabit", INTEL),
    it("m5.large", 2, 8192, 3, 10, U10, INTEL),
    it("m5.xlarge", 4, 16384, 4, 15, U10, INTEL),
    it("m6i.12xlarge", 48, 196608, 8, 30, "18.75 Gigabit", ICE),
    it("m6i.16xlarge", 64, 262144, 15, 50, "25 Gigabit", ICE),
    it("m6i.24xlarge", 96, 393216, 15, 50, "37.5 Gigabit", ICE),
    it("m6i.2xlarge", 8, 32768, 4, 15, U12, ICE),
    it("m6i.32xlarge", 128, 524288, 15, 50, "50 Gigabit", ICE),
    it("m6i.4xlarge", 16, 65536, 8, 30, U12, ICE),
    it("m6i.8xlarge", 32, 131072, 8, 30, "12.5 Gigabit", ICE),
    it("m6i.large", 2, 8192, 3, 10, U12, ICE),
    it("m6i.xlarge", 4, 16384, 4, 15, U12, ICE),
    it("m7i.12xlarge", 48, 196608, 8, 30, "18.75 Gigabit", SPR),
    it("m7i.16xlarge", 64, 262144, 15, 50, "25 Gigabit", SPR),
    it("m7i.24xlarge", 96, 393216, 15, 50, "37.5 Gigabit", SPR),
    it("m7i.2xlarge", 8, 32768, 4, 15, U12, SPR),
    it("m7i.48xlarge", 192, 786432, 15, 50, "50 Gigabit", SPR),
    it("m7i.4xlarge", 16, 65536, 8, 30, U12, SPR),
    it("m7i.8xlarge", 32, 131072, 8, 30, "12.5 Gigabit", SPR),
    it("m7i.large", 2, 8192, 3, 10, U12, SPR),
    it("m7i.xlarge", 4, 16384, 4, 15, U12, SPR),
    gpu(
        InstanceTypeInfo {
            maximum_network_interfaces: 60,
            network_cards: 4,
            ..it(
                "p4d.24xlarge",
                96,
                1179648,
                60,
                50,
                "4x 100 Gigabit",
                "Intel Xeon Platinum 8275CL",
            )
        },
        8,
        "A100",
        40960,
    ),
    it("r5.12xlarge", 48, 393216, 8, 30, "12 Gigabit", INTEL),
    it("r5.16xlarge", 64, 524288, 15, 50, "20 Gigabit", INTEL),
    it("r5.24xlarge", 96, 786432, 15, 50, "25 Gigabit", INTEL),
    it("r5.2xlarge", 8, 65536, 4, 15, U10, INTEL),
    it("r5.4xlarge", 16, 131072, 8, 30, U10, INTEL),
    it("r5.8xlarge", 32, 262144, 8, 30, "10 Gigabit", INTEL),
    it("r5.large", 2, 16384, 3, 10, U10, INTEL),
    it("r5.xlarge", 4, 32768, 4, 15, U10, INTEL),
    it("r6i.12xlarge", 48, 393216, 8, 30, "18.75 Gigabit", ICE),
    it("r6i.16xlarge", 64, 524288, 15, 50, "25 Gigabit", ICE),
    it("r6i.24xlarge", 96, 786432, 15, 50, "37.5 Gigabit", ICE),
    it("r6i.2xlarge", 8, 65536, 4, 15, U12, ICE),
    it("r6i.32xlarge", 128, 1048576, 15, 50, "50 Gigabit", ICE),
    it("r6i.4xlarge", 16, 131072, 8, 30, U12, ICE),
    it("r6i.8xlarge", 32, 262144, 8, 30, "12.5 Gigabit", ICE),
    it("r6i.large", 2, 16384, 3, 10, U12, ICE),
    it("r6i.xlarge", 4, 32768, 4, 15, U12, ICE),
    burst(it("t3.2xlarge", 8, 32768, 4, 15, U5, INTEL)),
    burst(it("t3.large", 2, 8192, 3, 12, U5, INTEL)),
    burst(it("t3.medium", 2, 4096, 3, 6, U5, INTEL)),
    burst(it("t3.micro", 2, 1024, 2, 2, U5, INTEL)),
    burst(it("t3.nano", 2, 512, 2, 2, U5, INTEL)),
    burst(it("t3.small", 2, 2048, 3, 4, U5, INTEL)),
    burst(it("t3.xlarge", 4, 16384, 4, 15, U5, INTEL)),
    burst(it("t3a.2xlarge", 8, 32768, 4, 15, U5, AMD_T3A)),
    burst(it("t3a.large", 2, 8192, 3, 12, U5, AMD_T3A)),
    burst(it("t3a.medium", 2, 4096, 3, 6, U5, AMD_T3A)),
    burst(it("t3a.micro", 2, 1024, 2, 2, U5, AMD_T3A)),
    burst(it("t3a.nano", 2, 512, 2, 2, U5, AMD_T3A)),
    burst(it("t3a.small", 2, 2048, 2, 4, U5, AMD_T3A)),
    burst(it("t3a.xlarge", 4, 16384, 4, 15, U5, AMD_T3A)),
];

/// The figures for an instance type, if Skiff knows it.
pub fn instance_type(name: &str) -> Option<&'static InstanceTypeInfo> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

/// The DescribeInstanceTypes shape of one type.
fn render(t: &InstanceTypeInfo) -> Value {
    let per_card = t.maximum_network_interfaces / t.network_cards.max(1);
    let cards: Vec<Value> = (0..t.network_cards)
        .map(|i| {
            json!({"NetworkCardIndex": i, "NetworkPerformance": t.network_performance,
                        "MaximumNetworkInterfaces": per_card})
        })
        .collect();
    let mut v = json!({
        "InstanceType": t.name,
        "CurrentGeneration": true,
        "FreeTierEligible": t.name == "t3.micro",
        "SupportedUsageClasses": ["on-demand", "spot"],
        "SupportedRootDeviceTypes": ["ebs"],
        "SupportedVirtualizationTypes": ["hvm"],
        "BareMetal": false,
        "Hypervisor": "nitro",
        "ProcessorInfo": {"SupportedArchitectures": ["x86_64"], "Manufacturer": if t.processor.starts_with("AMD") { "AMD" } else { "Intel" }},
        "VCpuInfo": {"DefaultVCpus": t.vcpus, "DefaultCores": (t.vcpus / 2).max(1), "DefaultThreadsPerCore": if t.vcpus >= 2 { 2 } else { 1 }},
        "MemoryInfo": {"SizeInMiB": t.memory_mib},
        "InstanceStorageSupported": false,
        "EbsInfo": {"EbsOptimizedSupport": "default", "EncryptionSupport": "supported", "NvmeSupport": "required"},
        "NetworkInfo": {
            "NetworkPerformance": t.network_performance,
            "MaximumNetworkInterfaces": t.maximum_network_interfaces,
            "MaximumNetworkCards": t.network_cards,
            "DefaultNetworkCardIndex": 0,
            "NetworkCards": cards,
            "Ipv4AddressesPerInterface": t.ipv4_addresses_per_interface,
            "Ipv6AddressesPerInterface": t.ipv6_addresses_per_interface,
            "Ipv6Supported": true,
            "EnaSupport": "required",
            "EfaSupported": t.name.starts_with("p4d"),
            "EncryptionInTransitSupported": !t.name.starts_with("t3") && !t.name.starts_with("m5.") && !t.name.starts_with("c5.") && !t.name.starts_with("r5."),
        },
        "PlacementGroupInfo": {"SupportedStrategies": ["cluster", "partition", "spread"]},
        "HibernationSupported": true,
        "BurstablePerformanceSupported": t.burstable,
        "DedicatedHostsSupported": !t.burstable,
        "AutoRecoverySupported": true,
        "SupportedBootModes": ["legacy-bios", "uefi"],
    });
    if let Some((count, model, mib)) = t.gpus {
        v["GpuInfo"] = json!({
            "Gpus": [{"Name": model, "Manufacturer": "NVIDIA", "Count": count, "MemoryInfo": {"SizeInMiB": mib}}],
            "TotalGpuMemoryInMiB": mib * count as u64,
        });
    }
    v
}

const FILTERS: &[(&str, &str)] = &[
    ("auto-recovery-supported", "AutoRecoverySupported"),
    ("bare-metal", "BareMetal"),
    (
        "burstable-performance-supported",
        "BurstablePerformanceSupported",
    ),
    ("current-generation", "CurrentGeneration"),
    ("free-tier-eligible", "FreeTierEligible"),
    ("hibernation-supported", "HibernationSupported"),
    ("hypervisor", "Hypervisor"),
    ("instance-type", "InstanceType"),
    ("memory-info.size-in-mib", "MemoryInfo.SizeInMiB"),
    (
        "network-info.ipv4-addresses-per-interface",
        "NetworkInfo.Ipv4AddressesPerInterface",
    ),
    (
        "network-info.ipv6-addresses-per-interface",
        "NetworkInfo.Ipv6AddressesPerInterface",
    ),
    ("network-info.ipv6-supported", "NetworkInfo.Ipv6Supported"),
    (
        "network-info.maximum-network-interfaces",
        "NetworkInfo.MaximumNetworkInterfaces",
    ),
    (
        "network-info.network-performance",
        "NetworkInfo.NetworkPerformance",
    ),
    (
        "processor-info.supported-architecture",
        "ProcessorInfo.SupportedArchitectures",
    ),
    ("supported-usage-class", "SupportedUsageClasses"),
    (
        "supported-virtualization-type",
        "SupportedVirtualizationTypes",
    ),
    ("vcpu-info.default-vcpus", "VCpuInfo.DefaultVCpus"),
    (
        "gpu-info.total-gpu-memory-in-mib",
        "GpuInfo.TotalGpuMemoryInMiB",
    ),
];

#[doc(alias = "DescribeInstanceTypes")]
pub(crate) async fn describe_instance_types(
    _ctx: &RequestContext,
    input: Value,
) -> Result<Value, AwsError> {
    let names = str_list(&input, "InstanceTypes");
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| instance_type(n).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(error(
            "InvalidInstanceType",
            &[("names", &unknown.join(", "))],
        ));
    }
    let filters = filters::parse(&input, FILTERS)?;
    let items: Vec<Value> = INSTANCE_TYPES
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .map(render)
        .filter(|v| filters::matches(v, &filters, FILTERS, "Tags"))
        .collect();
    let (page, next) = pagination::page(items, "InstanceType", &input, (5, 100))?;
    Ok(common::listing("InstanceTypes", page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_max_pods_match_eks() {
        for w in INSTANCE_TYPES.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        // Figures from the EKS AMI's eni-max-pods.txt.
        for (name, pods) in [
            ("t3.medium", 17),
            ("t3.micro", 4),
            ("m5.large", 29),
            ("m5.xlarge", 58),
            ("m5.4xlarge", 234),
            ("c5.18xlarge", 737),
            ("r6i.32xlarge", 737),
            ("p4d.24xlarge", 737),
            ("t3a.small", 8),
        ] {
            assert_eq!(instance_type(name).unwrap().max_pods(), pods, "{name}");
        }
        assert!(instance_type("x9.huge").is_none());
    }
}
