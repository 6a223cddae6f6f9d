//! ec2: the operation table. One file per operation group; each arm names the handler.
//!
//! Every operation: `DryRun: true` answers `DryRunOperation` (412) before anything is read or written;
//! the region's defaults (default VPC, see [`regions`]) exist before a handler runs; each handler does
//! its writes in one store transaction, so an error changes nothing.
//!
//! Domain functions other crates call (AutoScaling, EKS, the EBS CSI integration) are re-exported at
//! the bottom of this file.

use serde_json::Value;
use skiff_aws_model::AwsError;

use crate::context::RequestContext;

mod common;
mod errors;
mod filters;
mod pagination;
mod tags;

mod address_pool;
mod addresses;
mod images;
pub mod instance_types;
pub mod instances;
mod internet_gateways;
mod key_pairs;
pub mod launch_templates;
mod nat_gateways;
mod network_acls;
pub mod network_interfaces;
pub mod regions;
mod route_tables;
mod security_groups;
mod subnets;
pub mod volumes;
mod vpc_endpoints;
mod vpcs;

#[cfg(test)]
pub(crate) mod testing;

/// Route one ec2 operation to its handler.
pub async fn dispatch(
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, AwsError> {
    if common::opt_bool(&input, "DryRun") == Some(true) {
        return Err(errors::error("DryRunOperation", &[]));
    }
    regions::defaults(ctx).await?;
    match operation {
        // vpcs.rs
        "CreateVpc" => vpcs::create_vpc(ctx, input).await,
        "DescribeVpcs" => vpcs::describe_vpcs(ctx, input).await,
        "DeleteVpc" => vpcs::delete_vpc(ctx, input).await,
        "DescribeVpcAttribute" => vpcs::describe_vpc_attribute(ctx, input).await,
        "ModifyVpcAttribute" => vpcs::modify_vpc_attribute(ctx, input).await,
        "AssociateVpcCidrBlock" => vpcs::associate_vpc_cidr_block(ctx, input).await,
        "DisassociateVpcCidrBlock" => vpcs::disassociate_vpc_cidr_block(ctx, input).await,
        // subnets.rs
        "CreateSubnet" => subnets::create_subnet(ctx, input).await,
        "DescribeSubnets" => subnets::describe_subnets(ctx, input).await,
        "DeleteSubnet" => subnets::delete_subnet(ctx, input).await,
        "ModifySubnetAttribute" => subnets::modify_subnet_attribute(ctx, input).await,
        // route_tables.rs
        "CreateRouteTable" => route_tables::create_route_table(ctx, input).await,
        "DescribeRouteTables" => route_tables::describe_route_tables(ctx, input).await,
        "DeleteRouteTable" => route_tables::delete_route_table(ctx, input).await,
        "CreateRoute" => route_tables::create_route(ctx, input).await,
        "ReplaceRoute" => route_tables::replace_route(ctx, input).await,
        "DeleteRoute" => route_tables::delete_route(ctx, input).await,
        "AssociateRouteTable" => route_tables::associate_route_table(ctx, input).await,
        "DisassociateRouteTable" => route_tables::disassociate_route_table(ctx, input).await,
        "ReplaceRouteTableAssociation" => {
            route_tables::replace_route_table_association(ctx, input).await
        }
        // internet_gateways.rs
        "CreateInternetGateway" => internet_gateways::create_internet_gateway(ctx, input).await,
        "DescribeInternetGateways" => {
            internet_gateways::describe_internet_gateways(ctx, input).await
        }
        "DeleteInternetGateway" => internet_gateways::delete_internet_gateway(ctx, input).await,
        "AttachInternetGateway" => internet_gateways::attach_internet_gateway(ctx, input).await,
        "DetachInternetGateway" => internet_gateways::detach_internet_gateway(ctx, input).await,
        "CreateEgressOnlyInternetGateway" => {
            internet_gateways::create_egress_only_internet_gateway(ctx, input).await
        }
        "DescribeEgressOnlyInternetGateways" => {
            internet_gateways::describe_egress_only_internet_gateways(ctx, input).await
        }
        "DeleteEgressOnlyInternetGateway" => {
            internet_gateways::delete_egress_only_internet_gateway(ctx, input).await
        }
        // security_groups.rs
        "CreateSecurityGroup" => security_groups::create_security_group(ctx, input).await,
        "DescribeSecurityGroups" => security_groups::describe_security_groups(ctx, input).await,
        "DeleteSecurityGroup" => security_groups::delete_security_group(ctx, input).await,
        "AuthorizeSecurityGroupIngress" => {
            security_groups::authorize_security_group_ingress(ctx, input).await
        }
        "AuthorizeSecurityGroupEgress" => {
            security_groups::authorize_security_group_egress(ctx, input).await
        }
        "RevokeSecurityGroupIngress" => {
            security_groups::revoke_security_group_ingress(ctx, input).await
        }
        "RevokeSecurityGroupEgress" => {
            security_groups::revoke_security_group_egress(ctx, input).await
        }
        "ModifySecurityGroupRules" => {
            security_groups::modify_security_group_rules(ctx, input).await
        }
        "DescribeSecurityGroupRules" => {
            security_groups::describe_security_group_rules(ctx, input).await
        }
        // network_acls.rs
        "CreateNetworkAcl" => network_acls::create_network_acl(ctx, input).await,
        "DescribeNetworkAcls" => network_acls::describe_network_acls(ctx, input).await,
        "DeleteNetworkAcl" => network_acls::delete_network_acl(ctx, input).await,
        "CreateNetworkAclEntry" => network_acls::create_network_acl_entry(ctx, input).await,
        "ReplaceNetworkAclEntry" => network_acls::replace_network_acl_entry(ctx, input).await,
        "DeleteNetworkAclEntry" => network_acls::delete_network_acl_entry(ctx, input).await,
        "ReplaceNetworkAclAssociation" => {
            network_acls::replace_network_acl_association(ctx, input).await
        }
        // network_interfaces.rs
        "CreateNetworkInterface" => network_interfaces::create_network_interface(ctx, input).await,
        "DescribeNetworkInterfaces" => {
            network_interfaces::describe_network_interfaces(ctx, input).await
        }
        "DeleteNetworkInterface" => network_interfaces::delete_network_interface(ctx, input).await,
        "AttachNetworkInterface" => network_interfaces::attach_network_interface(ctx, input).await,
        "DetachNetworkInterface" => network_interfaces::detach_network_interface(ctx, input).await,
        "AssignPrivateIpAddresses" => {
            network_interfaces::assign_private_ip_addresses(ctx, input).await
        }
        "UnassignPrivateIpAddresses" => {
            network_interfaces::unassign_private_ip_addresses(ctx, input).await
        }
        "ModifyNetworkInterfaceAttribute" => {
            network_interfaces::modify_network_interface_attribute(ctx, input).await
        }
        // addresses.rs
        "AllocateAddress" => addresses::allocate_address(ctx, input).await,
        "DescribeAddresses" => addresses::describe_addresses(ctx, input).await,
        "AssociateAddress" => addresses::associate_address(ctx, input).await,
        "DisassociateAddress" => addresses::disassociate_address(ctx, input).await,
        "ReleaseAddress" => addresses::release_address(ctx, input).await,
        "DescribeAddressesAttribute" => addresses::describe_addresses_attribute(ctx, input).await,
        // nat_gateways.rs
        "CreateNatGateway" => nat_gateways::create_nat_gateway(ctx, input).await,
        "DescribeNatGateways" => nat_gateways::describe_nat_gateways(ctx, input).await,
        "DeleteNatGateway" => nat_gateways::delete_nat_gateway(ctx, input).await,
        // key_pairs.rs
        "CreateKeyPair" => key_pairs::create_key_pair(ctx, input).await,
        "ImportKeyPair" => key_pairs::import_key_pair(ctx, input).await,
        "DescribeKeyPairs" => key_pairs::describe_key_pairs(ctx, input).await,
        "DeleteKeyPair" => key_pairs::delete_key_pair(ctx, input).await,
        // images.rs
        "DescribeImages" => images::describe_images(ctx, input).await,
        // instance_types.rs
        "DescribeInstanceTypes" => instance_types::describe_instance_types(ctx, input).await,
        // launch_templates.rs
        "CreateLaunchTemplate" => launch_templates::create_launch_template(ctx, input).await,
        "CreateLaunchTemplateVersion" => {
            launch_templates::create_launch_template_version(ctx, input).await
        }
        "DescribeLaunchTemplates" => launch_templates::describe_launch_templates(ctx, input).await,
        "DescribeLaunchTemplateVersions" => {
            launch_templates::describe_launch_template_versions(ctx, input).await
        }
        "ModifyLaunchTemplate" => launch_templates::modify_launch_template(ctx, input).await,
        "DeleteLaunchTemplate" => launch_templates::delete_launch_template(ctx, input).await,
        "DeleteLaunchTemplateVersions" => {
            launch_templates::delete_launch_template_versions(ctx, input).await
        }
        // instances.rs
        "RunInstances" => instances::run_instances(ctx, input).await,
        "DescribeInstances" => instances::describe_instances(ctx, input).await,
        "TerminateInstances" => instances::terminate_instances(ctx, input).await,
        "StopInstances" => instances::stop_instances(ctx, input).await,
        "StartInstances" => instances::start_instances(ctx, input).await,
        "RebootInstances" => instances::reboot_instances(ctx, input).await,
        "DescribeInstanceAttribute" => instances::describe_instance_attribute(ctx, input).await,
        "ModifyInstanceAttribute" => instances::modify_instance_attribute(ctx, input).await,
        "DescribeInstanceStatus" => instances::describe_instance_status(ctx, input).await,
        // volumes.rs
        "CreateVolume" => volumes::create_volume(ctx, input).await,
        "DescribeVolumes" => volumes::describe_volumes(ctx, input).await,
        "DeleteVolume" => volumes::delete_volume(ctx, input).await,
        "AttachVolume" => volumes::attach_volume(ctx, input).await,
        "DetachVolume" => volumes::detach_volume(ctx, input).await,
        "ModifyVolume" => volumes::modify_volume(ctx, input).await,
        "DescribeVolumesModifications" => volumes::describe_volumes_modifications(ctx, input).await,
        "CreateSnapshot" => volumes::create_snapshot(ctx, input).await,
        "DescribeSnapshots" => volumes::describe_snapshots(ctx, input).await,
        "DeleteSnapshot" => volumes::delete_snapshot(ctx, input).await,
        // vpc_endpoints.rs
        "CreateVpcEndpoint" => vpc_endpoints::create_vpc_endpoint(ctx, input).await,
        "DescribeVpcEndpoints" => vpc_endpoints::describe_vpc_endpoints(ctx, input).await,
        "DeleteVpcEndpoints" => vpc_endpoints::delete_vpc_endpoints(ctx, input).await,
        "ModifyVpcEndpoint" => vpc_endpoints::modify_vpc_endpoint(ctx, input).await,
        // tags.rs
        "CreateTags" => tags::create_tags(ctx, input).await,
        "DeleteTags" => tags::delete_tags(ctx, input).await,
        "DescribeTags" => tags::describe_tags(ctx, input).await,
        // regions.rs
        "DescribeRegions" => regions::describe_regions(ctx, input).await,
        "DescribeAvailabilityZones" => regions::describe_availability_zones(ctx, input).await,
        "DescribeAccountAttributes" => regions::describe_account_attributes(ctx, input).await,
        _ => Err(crate::not_implemented("ec2", operation)),
    }
}

pub use instance_types::{InstanceTypeInfo, instance_type};
pub use instances::{
    LaunchRequest, describe_instances_internal, run_instances_internal,
    terminate_instances_internal,
};
pub use launch_templates::{ResolvedTemplate, resolve as resolve_launch_template};
pub use network_interfaces::{allocate_private_ips, private_dns_name, release_private_ips};
pub use volumes::{
    VolumeSpec, attach_volume_internal, create_volume_internal, delete_volume_internal,
    describe_volume_internal, detach_volume_internal, resize_volume_internal,
};
