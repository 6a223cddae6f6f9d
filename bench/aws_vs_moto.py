#!/usr/bin/env python3
"""The same boto3 calls against Skiff's AWS gateway and moto_server, sequential and with 64 connections.

Usage: bench/aws_vs_moto.py [--skiff PATH_TO_SKIFF_BINARY] [--calls N] [--vpcs N]

Starts `skiff up` and `moto_server` on free loopback ports, fills each with the same VPCs, then times:
  * sequential DescribeVpcs (1 connection), GetCallerIdentity, CreateSecurityGroup;
  * DescribeVpcs from 64 threads (64 connections);
  * a filtered DescribeVpcs (tag filter) over all the VPCs.
Prints requests/s per server and the Skiff/moto ratio (design.md section 7: >= 10x sequential,
>= 50x with 64 connections).
"""
import argparse
import concurrent.futures
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import botocore.config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url, path):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + path, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{url} did not come up")


def client(url, service, pool=10):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(max_pool_connections=pool, retries={"max_attempts": 1}),
    )


def rate(n, fn):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def parallel_rate(n, threads, fn):
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: fn(), range(n)))
    return n / (time.perf_counter() - start)


def run(url, calls, vpcs):
    ec2 = client(url, "ec2", pool=64)
    sts = client(url, "sts")
    for i in range(vpcs):
        v = ec2.create_vpc(CidrBlock=f"10.{i // 250}.{i % 250}.0/24")["Vpc"]["VpcId"]
        ec2.create_tags(Resources=[v], Tags=[{"Key": "team", "Value": "a" if i % 10 == 0 else "b"}])
    vpc = ec2.create_vpc(CidrBlock="172.16.0.0/16")["Vpc"]["VpcId"]
    counter = iter(range(10**9))
    out = {
        "DescribeVpcs(MaxResults=5) sequential": rate(calls, lambda: ec2.describe_vpcs(MaxResults=5)),
        "GetCallerIdentity sequential": rate(calls, sts.get_caller_identity),
        "CreateSecurityGroup sequential": rate(
            calls,
            lambda: ec2.create_security_group(GroupName=f"g{next(counter)}", Description="d", VpcId=vpc),
        ),
        "DescribeVpcs(MaxResults=5) 64 connections": parallel_rate(
            calls * 4, 64, lambda: ec2.describe_vpcs(MaxResults=5)
        ),
    }
    start = time.perf_counter()
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:team", "Values": ["a"]}])["Vpcs"]
    out[f"filtered DescribeVpcs over {vpcs} VPCs (ms, lower is better)"] = (time.perf_counter() - start) * 1000
    assert len(found) == (vpcs + 9) // 10, len(found)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skiff", default="target/release/skiff")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--vpcs", type=int, default=1000)
    args = ap.parse_args()
    if not shutil.which("moto_server"):
        sys.exit("moto_server is not installed (pip install 'moto[server]')")
    data = tempfile.mkdtemp(prefix="skiff-bench-")
    sp, mp = free_port(), free_port()
    skiff = subprocess.Popen(
        [args.skiff, "up", "--data-dir", data, "--listen", f"127.0.0.1:{sp}", "--cluster-port-base", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    moto = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(mp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        skiff_url, moto_url = f"http://127.0.0.1:{sp}", f"http://127.0.0.1:{mp}"
        wait_up(skiff_url, "/_skiff/health")
        wait_up(moto_url, "/")
        results = {"skiff": run(skiff_url, args.calls, args.vpcs), "moto": run(moto_url, args.calls, args.vpcs)}
    finally:
        skiff.terminate()
        moto.terminate()
        skiff.wait()
        moto.wait()
        shutil.rmtree(data, ignore_errors=True)
    print(f"{'measure':62} {'skiff':>10} {'moto':>10} {'ratio':>8}")
    for k in results["skiff"]:
        s, m = results["skiff"][k], results["moto"][k]
        ratio = (m / s) if "lower is better" in k else (s / m)
        unit = "" if "ms" in k else " req/s"
        print(f"{k:62} {s:10.1f} {m:10.1f} {ratio:7.1f}x{unit}")


if __name__ == "__main__":
    main()
