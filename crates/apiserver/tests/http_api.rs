//! The HTTP API against a live server on 127.0.0.1:0 with the in-memory store: discovery,
//! CRUD, patches, field validation, paging, watch, Table output, finalizers, status and scale.

mod support;

use bytes::Bytes;
use serde_json::{Value, json};
use support::{eventually, next_event, server};

fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

#[tokio::test]
async fn discovery_version_health_and_unknown_paths() {
    let s = server().await;
    let r = s.get("/api").await;
    assert_eq!(r.body["kind"], "APIVersions");
    assert_eq!(r.body["versions"], json!(["v1"]));
    let r = s.get("/apis").await;
    let names: Vec<&str> = r.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["apps", "coordination.k8s.io"]);
    assert_eq!(
        r.body["groups"][0]["preferredVersion"]["groupVersion"],
        "apps/v1"
    );
    let r = s.get("/apis/apps/v1").await;
    let res: Vec<&str> = r.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        res,
        ["deployments", "deployments/status", "deployments/scale"]
    );
    assert_eq!(r.body["resources"][0]["shortNames"], json!(["deploy"]));
    assert_eq!(r.body["resources"][2]["kind"], "Scale");
    assert_eq!(r.body["resources"][2]["group"], "autoscaling");
    let r = s.get("/api/v1").await;
    assert!(
        r.body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "configmaps" && x["namespaced"] == true)
    );
    let r = s.get("/version").await;
    assert_eq!(r.body["gitVersion"], "v1.32.0-eks-skiff");
    assert_eq!(r.body["minor"], "32");
    let r = s.get("/healthz").await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "ok"));
    let r = s.get("/readyz?verbose").await;
    assert!(
        r.text.contains("[+]etcd ok") && r.text.ends_with("readyz check passed\n"),
        "{}",
        r.text
    );
    let r = s.get("/livez/ping").await;
    assert_eq!(r.text, "ok");
    let r = s
        .req(
            "GET",
            "/openapi/v2",
            None,
            None,
            &[(
                "accept",
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            )],
        )
        .await;
    assert_eq!(r.status.as_u16(), 406);
    assert_eq!(r.body["reason"], "NotAcceptable");
    let r = s.get("/apis/nope/v1/things").await;
    assert_eq!(r.status.as_u16(), 404);
    assert_eq!(
        r.body["message"],
        "the server could not find the requested resource"
    );
    let r = s.get("/apis/apps/v1/deployments").await;
    assert_eq!(r.body["kind"], "DeploymentList");
    s.api.shutdown().await;
}

#[tokio::test]
async fn system_namespaces_kubernetes_service_and_immortality() {
    let s = server().await;
    let r = s.get("/api/v1/namespaces").await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let r = s
        .get("/api/v1/namespaces/default/services/kubernetes")
        .await;
    assert_eq!(r.body["spec"]["clusterIP"], "10.100.0.1");
    let r = s.delete("/api/v1/namespaces/kube-system").await;
    assert_eq!(r.status.as_u16(), 403);
    assert_eq!(
        r.body["message"],
        "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn configmap_crud_conflicts_and_errors() {
    let s = server().await;
    let p = "/api/v1/namespaces/default/configmaps";
    let r = s.post(p, &cm("a", json!({"k": "v"}))).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let rv1 = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(r.body["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        r.body["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(r.body["metadata"]["namespace"], "default");
    assert_eq!(
        r.body["metadata"]["managedFields"][0]["operation"],
        "Update"
    );

    let r = s.post(p, &cm("a", json!({}))).await;
    assert_eq!(r.status.as_u16(), 409);
    assert_eq!(r.body["message"], "configmaps \"a\" already exists");
    assert_eq!(r.body["reason"], "AlreadyExists");

    let r = s.get(&format!("{p}/a")).await;
    assert_eq!(r.body["data"]["k"], "v");
    assert_eq!(r.body["metadata"]["resourceVersion"], rv1.as_str());

    // Optimistic concurrency.
    let mut upd = r.body.clone();
    upd["data"]["k"] = json!("v2");
    let r = s.put(&format!("{p}/a"), &upd).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let r = s.put(&format!("{p}/a"), &upd).await;
    assert_eq!(r.status.as_u16(), 409);
    assert_eq!(
        r.body["message"],
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Patches.
    let r = s
        .patch(
            &format!("{p}/a"),
            "application/merge-patch+json",
            &json!({"data": {"m": "1"}}),
        )
        .await;
    assert_eq!(r.body["data"], json!({"k": "v2", "m": "1"}));
    let r = s
        .patch(
            &format!("{p}/a"),
            "application/json-patch+json",
            &json!([{"op": "remove", "path": "/data/k"}]),
        )
        .await;
    assert_eq!(r.body["data"], json!({"m": "1"}));
    let r = s
        .patch(
            &format!("{p}/a"),
            "application/strategic-merge-patch+json",
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(r.body["metadata"]["labels"]["x"], "y");
    let r = s.patch(&format!("{p}/a"), "text/plain", &json!({})).await;
    assert_eq!(r.status.as_u16(), 415);

    // generateName.
    let r = s
        .post(
            p,
            &json!({"metadata": {"generateName": "gen-"}, "data": {}}),
        )
        .await;
    let name = r.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Errors.
    let r = s.get(&format!("{p}/missing")).await;
    assert_eq!(
        (r.status.as_u16(), r.body["message"].as_str().unwrap()),
        (404, "configmaps \"missing\" not found")
    );
    let r = s
        .post("/api/v1/namespaces/nope/configmaps", &cm("b", json!({})))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["message"].as_str().unwrap()),
        (404, "namespaces \"nope\" not found")
    );
    let mut wrong = cm("c", json!({}));
    wrong["metadata"]["namespace"] = json!("kube-system");
    let r = s.post(p, &wrong).await;
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(
        r.body["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    let r = s.post(p, &cm("Bad_Name", json!({}))).await;
    assert_eq!(r.status.as_u16(), 422);
    assert!(
        r.body["message"].as_str().unwrap().starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{}",
        r.text
    );
    let r = s
        .req(
            "POST",
            p,
            Some("application/json"),
            Some(Bytes::from_static(b"{not json")),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(r.body["kind"], "Status");
    let big = Bytes::from(vec![b' '; 3 * 1024 * 1024 + 10]);
    let r = s
        .req("POST", p, Some("application/json"), Some(big), &[])
        .await;
    assert_eq!(r.status.as_u16(), 413);

    // Delete.
    let r = s.delete(&format!("{p}/a")).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.body["status"], "Success");
    assert_eq!(s.get(&format!("{p}/a")).await.status.as_u16(), 404);
    s.api.shutdown().await;
}

#[tokio::test]
async fn field_validation_yaml_and_dry_run() {
    let s = server().await;
    let p = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "foo": 1}});
    let r = s.post(&format!("{p}?fieldValidation=Strict"), &d).await;
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(
        r.body["message"],
        "strict decoding error: unknown field \"spec.foo\""
    );
    let r = s
        .post(&format!("{p}?fieldValidation=Warn&dryRun=All"), &d)
        .await;
    assert_eq!(r.status.as_u16(), 201);
    assert_eq!(
        r.headers.get("warning").unwrap(),
        "299 - \"unknown field \\\"spec.foo\\\"\""
    );
    assert!(r.body["spec"].get("foo").is_none());
    assert_eq!(
        s.get(&format!("{p}/d")).await.status.as_u16(),
        404,
        "dry run stores nothing"
    );

    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromyaml\ndata:\n  a: \"1\"\n";
    let r = s
        .req(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("application/yaml"),
            Some(Bytes::from(yaml)),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(r.body["data"]["a"], "1");
    s.api.shutdown().await;
}

#[tokio::test]
async fn list_paging_selectors_and_expired_continue() {
    let s = server().await;
    let p = "/api/v1/namespaces/default/configmaps";
    for i in 0..7 {
        let mut c = cm(&format!("c{i}"), json!({}));
        c["metadata"]["labels"] = json!({"parity": if i % 2 == 0 { "even" } else { "odd" }});
        assert_eq!(s.post(p, &c).await.status.as_u16(), 201);
    }
    let r = s.get(&format!("{p}?limit=3")).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    let rv = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let tok = r.body["metadata"]["continue"].as_str().unwrap().to_string();
    // Writes after the first page do not show up in later pages (consistent at the list's revision).
    assert_eq!(s.post(p, &cm("c9", json!({}))).await.status.as_u16(), 201);
    let mut names = Vec::new();
    let mut next = Some(tok);
    while let Some(t) = next {
        let r = s.get(&format!("{p}?limit=3&continue={t}")).await;
        assert_eq!(r.body["metadata"]["resourceVersion"], rv.as_str());
        names.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        next = r.body["metadata"]["continue"].as_str().map(String::from);
    }
    assert_eq!(names, ["c3", "c4", "c5", "c6"]);

    let r = s
        .get(&format!("{p}?labelSelector=parity%3Deven&limit=2"))
        .await;
    let got: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["c0", "c2"]);
    assert!(r.body["metadata"]["continue"].is_string());
    let r = s
        .get(&format!("{p}?fieldSelector=metadata.name%3Dc5"))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = s.get(&format!("{p}?fieldSelector=spec.nope%3Dx")).await;
    assert_eq!(
        (r.status.as_u16(), r.body["message"].as_str().unwrap()),
        (400, "field label not supported: spec.nope")
    );
    let r = s
        .get("/api/v1/configmaps?labelSelector=parity%20in%20(odd)")
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);

    // A continue token whose revision was compacted is 410 Expired.
    let r = s.get(&format!("{p}?limit=2")).await;
    let tok = r.body["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(s.post(p, &cm("c10", json!({}))).await.status.as_u16(), 201);
    let now: i64 = s.post(p, &cm("c11", json!({}))).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    s.store.compact_to(now);
    let r = s.get(&format!("{p}?limit=2&continue={tok}")).await;
    assert_eq!(r.status.as_u16(), 410);
    assert_eq!(r.body["reason"], "Expired");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("The provided continue parameter is too old")
    );
    let r = s.get(&format!("{p}?continue=garbage")).await;
    assert_eq!(r.status.as_u16(), 400);
    s.api.shutdown().await;
}

#[tokio::test]
async fn watch_events_selectors_bookmarks_and_compaction() {
    let s = server().await;
    let p = "/api/v1/namespaces/default/configmaps";
    let rv = s.post(p, &cm("w0", json!({}))).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut all = s
        .watch(&format!("{p}?watch=1&resourceVersion={rv}"), &[])
        .await;
    let mut sel = s
        .watch(
            &format!("{p}?watch=true&resourceVersion={rv}&labelSelector=app%3Dx"),
            &[],
        )
        .await;
    let mut c = cm("w1", json!({}));
    c["metadata"]["labels"] = json!({"app": "x"});
    s.post(p, &c).await;
    s.patch(
        &format!("{p}/w1"),
        "application/merge-patch+json",
        &json!({"data": {"a": "b"}}),
    )
    .await;
    s.patch(
        &format!("{p}/w1"),
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"app": "y"}}}),
    )
    .await;
    s.delete(&format!("{p}/w1")).await;
    let types: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                next_event(&mut all).await["type"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        v
    };
    assert_eq!(types, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);
    let e1 = next_event(&mut sel).await;
    let e2 = next_event(&mut sel).await;
    let e3 = next_event(&mut sel).await;
    assert_eq!(
        (
            e1["type"].as_str(),
            e2["type"].as_str(),
            e3["type"].as_str()
        ),
        (Some("ADDED"), Some("MODIFIED"), Some("DELETED"))
    );
    assert_eq!(
        e3["object"]["metadata"]["labels"]["app"], "y",
        "left the selector: DELETED with the new state"
    );

    // Without a resourceVersion: the current state first as ADDED.
    let mut fresh = s.watch(&format!("{p}?watch=1"), &[]).await;
    assert_eq!(
        next_event(&mut fresh).await["object"]["metadata"]["name"],
        "w0"
    );

    // Legacy /watch/ path and Table events.
    let rv = s.get(p).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut t = s
        .watch(
            &format!("/api/v1/watch/namespaces/default/configmaps?resourceVersion={rv}"),
            &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
        )
        .await;
    s.post(p, &cm("w2", json!({}))).await;
    let ev = next_event(&mut t).await;
    assert_eq!(ev["object"]["kind"], "Table");
    assert_eq!(ev["object"]["rows"][0]["cells"][0], "w2");
    assert_eq!(ev["object"]["columnDefinitions"][0]["name"], "Name");

    // Compacted: ERROR with 410.
    let now: i64 = s.post(p, &cm("w3", json!({}))).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    s.store.compact_to(now);
    let mut old = s
        .watch(&format!("{p}?watch=1&resourceVersion={rv}"), &[])
        .await;
    let ev = next_event(&mut old).await;
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");

    // timeoutSeconds ends the stream.
    let mut short = s
        .watch(
            &format!("{p}?watch=1&resourceVersion={now}&timeoutSeconds=1"),
            &[],
        )
        .await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), short.recv())
        .await
        .expect("stream ends");
    assert!(end.is_none());
    s.api.shutdown().await;
}

#[tokio::test]
async fn table_output_for_get_and_list() {
    let s = server().await;
    let accept = [(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let r = s
        .req("GET", "/api/v1/namespaces", None, None, &accept)
        .await;
    assert_eq!(r.body["kind"], "Table");
    assert_eq!(r.body["apiVersion"], "meta.k8s.io/v1");
    let cols: Vec<&str> = r.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Status", "Age"]);
    assert_eq!(r.body["rows"][0]["cells"][0], "default");
    assert_eq!(r.body["rows"][0]["cells"][1], "Active");
    assert_eq!(r.body["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let r = s
        .req(
            "GET",
            "/api/v1/namespaces/default?includeObject=Object",
            None,
            None,
            &accept,
        )
        .await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["rows"][0]["object"]["kind"], "Namespace");
    s.api.shutdown().await;
}

#[tokio::test]
async fn finalizers_and_deletion_timestamp() {
    let s = server().await;
    let p = "/api/v1/namespaces/default/configmaps";
    let mut c = cm("f", json!({}));
    c["metadata"]["finalizers"] = json!(["example.com/hold"]);
    s.post(p, &c).await;
    let r = s.delete(&format!("{p}/f")).await;
    assert_eq!(r.status.as_u16(), 200);
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    let r = s.get(&format!("{p}/f")).await;
    assert_eq!(r.status.as_u16(), 200, "only marked");
    let r = s
        .patch(
            &format!("{p}/f"),
            "application/merge-patch+json",
            &json!({"metadata": {"finalizers": null}}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(s.get(&format!("{p}/f")).await.status.as_u16(), 404);

    // Preconditions.
    let uid = s.post(p, &cm("g", json!({}))).await.body["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"preconditions": {"uid": "wrong"}}).to_string();
    let r = s
        .req(
            "DELETE",
            &format!("{p}/g"),
            Some("application/json"),
            Some(Bytes::from(body)),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 409);
    assert_eq!(
        r.body["message"],
        format!(
            "Operation cannot be fulfilled on configmaps \"g\": Precondition failed: UID in precondition: wrong, UID in object meta: {uid}"
        )
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let s = server().await;
    let p = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {}}});
    let r = s.post(p, &d).await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(r.body["metadata"]["generation"], 1);
    // Status only changes through /status.
    let mut upd = r.body.clone();
    upd["status"] = json!({"replicas": 2});
    upd["spec"]["replicas"] = json!(3);
    let r = s.put(&format!("{p}/web"), &upd).await;
    assert_eq!(r.body["status"], json!({}));
    assert_eq!(r.body["metadata"]["generation"], 2);
    let mut st = r.body.clone();
    st["status"] = json!({"replicas": 3});
    st["spec"]["replicas"] = json!(9);
    let r = s.put(&format!("{p}/web/status"), &st).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(
        (
            r.body["status"]["replicas"].as_i64(),
            r.body["spec"]["replicas"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(r.body["metadata"]["generation"], 2);
    // Scale.
    let r = s.get(&format!("{p}/web/scale")).await;
    assert_eq!(r.body["kind"], "Scale");
    assert_eq!(r.body["apiVersion"], "autoscaling/v1");
    assert_eq!(
        (
            r.body["spec"]["replicas"].as_i64(),
            r.body["status"]["replicas"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(r.body["status"]["selector"], "app=web");
    let r = s
        .patch(
            &format!("{p}/web/scale"),
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 5}}),
        )
        .await;
    assert_eq!(r.body["spec"]["replicas"], 5);
    let mut sc = r.body.clone();
    sc["spec"]["replicas"] = json!(1);
    let r = s.put(&format!("{p}/web/scale"), &sc).await;
    assert_eq!(r.body["spec"]["replicas"], 1, "{}", r.text);
    let r = s.put(&format!("{p}/web/scale"), &sc).await;
    assert_eq!(r.status.as_u16(), 409, "stale resourceVersion in the Scale");
    assert_eq!(s.get(&format!("{p}/web")).await.body["spec"]["replicas"], 1);
    let r = s.get("/api/v1/namespaces/default/configmaps/x/scale").await;
    assert_eq!(r.status.as_u16(), 404);
    s.api.shutdown().await;
}

#[tokio::test]
async fn put_creates_when_the_kind_allows_it() {
    let s = server().await;
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}});
    let r = s
        .put(
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/l",
            &lease,
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let r = s
        .put(
            "/api/v1/namespaces/default/configmaps/nope",
            &cm("nope", json!({})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 404);
    let r = s
        .put(
            "/api/v1/namespaces/default/configmaps/other",
            &cm("nope", json!({})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(
        r.body["message"],
        "the name of the object (nope) does not match the name on the URL (other)"
    );
    s.api.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_creates_then_updates_with_manager() {
    let s = server().await;
    let url = "/api/v1/namespaces/default/configmaps/ssa?fieldManager=tester";
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
    let r = s
        .req(
            "PATCH",
            url,
            Some("application/apply-patch+yaml"),
            Some(Bytes::from(body)),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    let mf = r.body["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        mf.iter()
            .any(|e| e["manager"] == "tester" && e["operation"] == "Apply"),
        "{mf:?}"
    );
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  b: \"2\"\n";
    let r = s
        .req(
            "PATCH",
            url,
            Some("application/apply-patch+yaml"),
            Some(Bytes::from(body)),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["data"]["b"], "2");
    assert!(
        r.body["data"].get("a").is_none(),
        "a field the manager stopped applying is pruned: {}",
        r.text
    );
    // Another manager changing tester's field: 409 with a FieldManagerConflict cause; force wins.
    let theirs = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  b: \"3\"\n";
    let other = "/api/v1/namespaces/default/configmaps/ssa?fieldManager=other";
    let r = s
        .req(
            "PATCH",
            other,
            Some("application/apply-patch+yaml"),
            Some(Bytes::from(theirs)),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text);
    assert_eq!(r.body["reason"], "Conflict");
    assert_eq!(
        r.body["details"]["causes"][0],
        json!({"reason": "FieldManagerConflict", "message": "conflict with \"tester\"", "field": ".data.b"})
    );
    let r = s
        .req(
            "PATCH",
            &format!("{other}&force=true"),
            Some("application/apply-patch+yaml"),
            Some(Bytes::from(theirs)),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["data"]["b"], "3");
    let managers: Vec<&str> = r.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(managers, ["other"], "tester lost its only field");
    let r = s
        .req(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/ssa",
            Some("application/apply-patch+yaml"),
            Some(Bytes::from(body)),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "apply needs a fieldManager");
    s.api.shutdown().await;
}

#[tokio::test]
async fn deletecollection_with_selector() {
    let s = server().await;
    let p = "/api/v1/namespaces/default/configmaps";
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let mut c = cm(n, json!({}));
        c["metadata"]["labels"] = json!({"l": l});
        s.post(p, &c).await;
    }
    let r = s.delete(&format!("{p}?labelSelector=l%3Dx")).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let left: Vec<Value> = s.get(p).await.body["items"].as_array().unwrap().clone();
    assert_eq!(left.len(), 1);
    eventually(|| async { true }).await;
    s.api.shutdown().await;
}
