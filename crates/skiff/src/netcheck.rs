//! `skiff netcheck --cluster C FROM TO:PORT [--protocol udp]`: ask a running Skiff (its gateway's
//! `/_skiff/netcheck`) whether FROM may connect to TO:PORT under the cluster's NetworkPolicies and
//! security groups for pods, print the verdict with the deciding policies and rules, and exit 0
//! when allowed, 1 when denied, 2 when the question could not be answered (CI scripts branch on it).

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::cli::NetcheckArgs;

/// Run the check; the exit code is the verdict.
pub fn run(args: &NetcheckArgs) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(check(args)));
    match outcome {
        Ok(v) => {
            print!("{}", render(&v));
            if v["allowed"].as_bool() == Some(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("skiff netcheck: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `TO:PORT` → (`TO`, port). The port is after the last colon, so IPv6 needs brackets: `[fd00::1]:80`.
pub fn split_target(s: &str) -> anyhow::Result<(String, u16)> {
    let (to, port) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("{s:?}: expected TO:PORT (e.g. default/web:80)"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| anyhow!("{s:?}: the port must be a number from 1 to 65535"))?;
    let to = to.trim_start_matches('[').trim_end_matches(']');
    if to.is_empty() {
        return Err(anyhow!("{s:?}: nothing before the port"));
    }
    Ok((to.to_string(), port))
}

/// Percent-encode a query value (RFC 3986 unreserved characters and `/`, `:` pass through).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn check(args: &NetcheckArgs) -> anyhow::Result<Value> {
    let (to, port) = split_target(&args.target)?;
    let mut url = format!(
        "{}/_skiff/netcheck?cluster={}&from={}&to={}&port={port}&protocol={}",
        args.endpoint.trim_end_matches('/'),
        encode(&args.cluster),
        encode(&args.from),
        encode(&to),
        encode(&args.protocol.to_ascii_uppercase()),
    );
    if let Some(region) = &args.region {
        url.push_str(&format!("&region={}", encode(region)));
    }
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("invalid endpoint URL {url}"))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(uri).body(Full::new(Bytes::new()))?;
    let resp = client.request(req).await.with_context(|| {
        format!(
            "cannot reach Skiff at {} (is `skiff up` running?)",
            args.endpoint
        )
    })?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "unexpected answer ({status}): {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or("unknown error");
        return Err(anyhow!("{msg} ({status})"));
    }
    Ok(v)
}

fn yes(b: &Value) -> &'static str {
    if b.as_bool() == Some(true) {
        "allowed"
    } else {
        "denied"
    }
}

fn end(e: &Value) -> String {
    let name = e["name"].as_str().unwrap_or_default();
    match e["ip"].as_str() {
        Some(ip) if ip != name => format!("{name} ({ip})"),
        _ => name.to_string(),
    }
}

/// The human form of a verdict: one headline, then per path the two directions and the security
/// groups, each with its reason.
pub fn render(v: &Value) -> String {
    let mut out = format!(
        "{} {} -> {}:{}/{}\n",
        yes(&v["allowed"]).to_ascii_uppercase(),
        v["from"].as_str().unwrap_or_default(),
        v["to"].as_str().unwrap_or_default(),
        v["port"],
        v["protocol"].as_str().unwrap_or_default(),
    );
    let paths = v["paths"].as_array().map(Vec::as_slice).unwrap_or_default();
    if paths.is_empty() {
        out.push_str(&format!(
            "  {}\n",
            v["summary"].as_str().unwrap_or_default()
        ));
    }
    for p in paths {
        out.push_str(&format!(
            "  {} -> {}:{}: {}\n",
            end(&p["source"]),
            end(&p["destination"]),
            p["port"],
            yes(&p["allowed"])
        ));
        for dir in ["egress", "ingress"] {
            out.push_str(&format!(
                "    {dir}: {}\n",
                p[dir]["reason"].as_str().unwrap_or_default()
            ));
        }
        let sg = &p["securityGroups"];
        if sg.is_object() {
            out.push_str(&format!("    security groups: {}\n", yes(&sg["allowed"])));
            for (side, dir) in [("source", "egress"), ("destination", "ingress")] {
                if let Some(groups) = sg[side]["groups"].as_array() {
                    let groups: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
                    out.push_str(&format!(
                        "      {side} groups {} from {}\n",
                        groups.join(","),
                        sg[side]["origin"].as_str().unwrap_or_default()
                    ));
                }
                out.push_str(&format!(
                    "      {dir}: {}\n",
                    sg[dir]["reason"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_split_at_the_last_colon() {
        assert_eq!(
            split_target("default/web:80").unwrap(),
            ("default/web".into(), 80)
        );
        assert_eq!(
            split_target("10.0.0.1:53").unwrap(),
            ("10.0.0.1".into(), 53)
        );
        assert_eq!(
            split_target("[fd00::1]:443").unwrap(),
            ("fd00::1".into(), 443)
        );
        assert!(split_target("web").is_err());
        assert!(split_target("web:0").is_err());
        assert!(split_target("web:http").is_err());
        assert!(split_target(":80").is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("svc/kube-system/kube-dns"),
            "svc/kube-system/kube-dns"
        );
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }

    #[test]
    fn verdicts_render_with_their_reasons() {
        let v = json!({"allowed": false, "from": "default/client", "to": "svc/default/web", "port": 80,
        "protocol": "TCP", "summary": "denied on 1 of 1 path(s)", "paths": [{
            "source": {"kind": "pod", "name": "default/client", "ip": "10.0.1.10"},
            "destination": {"kind": "pod", "name": "default/web", "ip": "10.0.1.20"},
            "port": 8080, "allowed": false,
            "egress": {"allowed": true, "reason": "no policy selects the pod (not isolated)"},
            "ingress": {"allowed": false, "reason": "isolated for ingress by default/deny; no rule allows"},
            "securityGroups": {"allowed": true,
                "destination": {"groups": ["sg-1"], "origin": "SecurityGroupPolicy default/web"},
                "egress": {"allowed": true, "reason": "source has no security groups"},
                "ingress": {"allowed": true, "reason": "allowed by sg-1 ingress rule sgr-1 (tcp 8080-8080, 10.0.0.0/16)"}}
        }]});
        assert_eq!(
            render(&v),
            "DENIED default/client -> svc/default/web:80/TCP\n\
             \x20 default/client (10.0.1.10) -> default/web (10.0.1.20):8080: denied\n\
             \x20   egress: no policy selects the pod (not isolated)\n\
             \x20   ingress: isolated for ingress by default/deny; no rule allows\n\
             \x20   security groups: allowed\n\
             \x20     egress: source has no security groups\n\
             \x20     destination groups sg-1 from SecurityGroupPolicy default/web\n\
             \x20     ingress: allowed by sg-1 ingress rule sgr-1 (tcp 8080-8080, 10.0.0.0/16)\n"
        );
        let none = json!({"allowed": false, "from": "a", "to": "svc/default/web", "port": 81,
            "protocol": "TCP", "summary": "service default/web has no port 81/TCP", "paths": []});
        assert_eq!(
            render(&none),
            "DENIED a -> svc/default/web:81/TCP\n  service default/web has no port 81/TCP\n"
        );
    }
}
