//! Decode + encode of a DescribeVpcs-like EC2 request: the gateway's per-request protocol cost.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use skiff_aws_model::{ServiceModel, WireRequest, decode, encode_output, service};

fn bench(c: &mut Criterion) {
    let ec2 = service("ec2").expect("embedded model");
    let body = b"Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=demo&Filter.2.Name=state&Filter.2.Value.1=available&VpcId.1=vpc-0123456789abcdef0&MaxResults=100";
    let headers = http::HeaderMap::new();
    let req = WireRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let vpcs: Vec<_> = (0..20)
        .map(|i| json!({"VpcId": format!("vpc-{i:017x}"), "CidrBlock": "10.0.0.0/16", "State": "available",
            "IsDefault": false, "OwnerId": "000000000000", "Tags": [{"Key": "Name", "Value": "demo"}]}))
        .collect();
    let output = json!({"Vpcs": vpcs});
    c.bench_function("ec2 DescribeVpcs decode", |b| b.iter(|| decode(ec2, &req)));
    let op = ec2.operation("DescribeVpcs").expect("op");
    c.bench_function("ec2 DescribeVpcs encode 20 vpcs", |b| {
        b.iter(|| encode_output(ec2, op, &output, "req-1"))
    });
    // Start-up cost of the largest model (paid once, at gateway start).
    let gz = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/aws/ec2/2016-11-15/service-2.json.gz"
    ))
    .expect("model file");
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    g.bench_function("load ec2 model", |b| {
        b.iter(|| ServiceModel::from_gzip("ec2", &gz))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
