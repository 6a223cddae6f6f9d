//! The RBAC authorizer fed by a store watch, the default policy, and the access reviews on top.

mod auth_support;

use std::sync::Arc;
use std::time::Duration;

use auth_support::{CLUSTER, MemStore, rbac_key};
use serde_json::{Value, json};
use skiff_apiserver::auth_apis::access_review::{AccessReview, SelfSubjectRulesReview};
use skiff_apiserver::authn::UserInfo;
use skiff_apiserver::authz::bootstrap_policy::ensure_bootstrap_policy;
use skiff_apiserver::authz::rbac::RbacAuthorizer;
use skiff_apiserver::authz::{Attributes, Authorizer, Decision};
use skiff_apiserver::registry::hooks::{CreateOnlyResource, HookError, HookRequest};
use skiff_store::Store;

fn sa_user() -> UserInfo {
    UserInfo {
        name: "system:serviceaccount:default:reader".into(),
        groups: vec![
            "system:serviceaccounts".into(),
            "system:serviceaccounts:default".into(),
            "system:authenticated".into(),
        ],
        ..Default::default()
    }
}

fn list_pods(user: &UserInfo, ns: &str) -> Attributes {
    Attributes {
        user: user.clone(),
        verb: "list".into(),
        resource_request: true,
        resource: "pods".into(),
        namespace: ns.into(),
        ..Default::default()
    }
}

async fn started() -> (Arc<MemStore>, Arc<RbacAuthorizer>) {
    let store = MemStore::new();
    let n = ensure_bootstrap_policy(&*store, CLUSTER).await.unwrap();
    assert!(n > 40, "created {n}");
    let rbac = Arc::new(RbacAuthorizer::start(store.clone(), CLUSTER).await.unwrap());
    (store, rbac)
}

#[tokio::test]
async fn bootstrap_policy_is_idempotent_and_keeps_edits() {
    let store = MemStore::new();
    let first = ensure_bootstrap_policy(&*store, CLUSTER).await.unwrap();
    assert_eq!(ensure_bootstrap_policy(&*store, CLUSTER).await.unwrap(), 0);
    let k = rbac_key("clusterroles", None, "view");
    let mut view = store.get_json(&k).await.unwrap();
    assert_eq!(
        view["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "true"
    );
    view["metadata"]["labels"]["edited"] = json!("yes");
    store.put_json(&k, &view).await;
    store
        .delete(&rbac_key("clusterrolebindings", None, "cluster-admin"))
        .await;
    assert_eq!(ensure_bootstrap_policy(&*store, CLUSTER).await.unwrap(), 1);
    assert_eq!(
        store.get_json(&k).await.unwrap()["metadata"]["labels"]["edited"],
        "yes"
    );
    assert_eq!(
        store
            .count(&format!("/k8s/{CLUSTER}/rbac.authorization.k8s.io/"))
            .await
            .unwrap() as usize,
        first
    );
}

/// The seed notes' case at the authorizer level: a ServiceAccount is denied listing pods, then
/// allowed once a Role and RoleBinding exist, then denied again when the binding goes.
#[tokio::test]
async fn watch_keeps_decisions_current() {
    let (store, rbac) = started().await;
    let sa = sa_user();
    assert!(matches!(
        rbac.authorize(&list_pods(&sa, "default")).await,
        Decision::NoOpinion(_)
    ));

    store.put_json(&rbac_key("roles", Some("default"), "pod-reader"), &json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    })).await;
    let rev = store.put_json(&rbac_key("rolebindings", Some("default"), "read-pods"), &json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "read-pods", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}],
    })).await;
    assert!(rbac.wait_for_revision(rev, Duration::from_secs(5)).await);
    assert_eq!(
        rbac.authorize(&list_pods(&sa, "default")).await,
        Decision::Allow
    );
    assert!(matches!(
        rbac.authorize(&list_pods(&sa, "kube-system")).await,
        Decision::NoOpinion(_)
    ));

    let rev = store
        .delete(&rbac_key("rolebindings", Some("default"), "read-pods"))
        .await;
    assert!(rbac.wait_for_revision(rev, Duration::from_secs(5)).await);
    assert!(matches!(
        rbac.authorize(&list_pods(&sa, "default")).await,
        Decision::NoOpinion(_)
    ));
}

#[tokio::test]
async fn aggregation_follows_a_new_labelled_role() {
    let (store, rbac) = started().await;
    let u = UserInfo {
        name: "jane".into(),
        ..Default::default()
    };
    store.put_json(&rbac_key("rolebindings", Some("team"), "jane-view"), &json!({
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "jane"}],
    })).await;
    let widgets = Attributes {
        user: u.clone(),
        verb: "get".into(),
        resource_request: true,
        api_group: "example.com".into(),
        resource: "widgets".into(),
        namespace: "team".into(),
        name: "w".into(),
        ..Default::default()
    };
    let rev = store.current_revision().await.unwrap();
    assert!(rbac.wait_for_revision(rev, Duration::from_secs(5)).await);
    assert_eq!(
        rbac.authorize(&list_pods(&u, "team")).await,
        Decision::Allow
    );
    assert_ne!(rbac.authorize(&widgets).await, Decision::Allow);
    // A CRD author ships a role labelled aggregate-to-view: view (and so jane) gains it.
    let rev = store.put_json(&rbac_key("clusterroles", None, "widgets-view"), &json!({
        "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}],
    })).await;
    assert!(rbac.wait_for_revision(rev, Duration::from_secs(5)).await);
    assert_eq!(rbac.authorize(&widgets).await, Decision::Allow);
    // admin aggregates edit which aggregates view: transitively granted there too.
    let admin_user = UserInfo {
        name: "boss".into(),
        ..Default::default()
    };
    let rev = store.put_json(&rbac_key("clusterrolebindings", None, "boss"), &json!({
        "roleRef": {"kind": "ClusterRole", "name": "admin"}, "subjects": [{"kind": "User", "name": "boss"}],
    })).await;
    assert!(rbac.wait_for_revision(rev, Duration::from_secs(5)).await);
    assert_eq!(
        rbac.authorize(&Attributes {
            user: admin_user,
            ..widgets.clone()
        })
        .await,
        Decision::Allow
    );
}

fn review_req(user: &UserInfo) -> HookRequest<'_> {
    HookRequest {
        user,
        namespace: None,
        name: None,
        dry_run: false,
    }
}

#[tokio::test]
async fn access_reviews() {
    let (_store, rbac) = started().await;
    let authz: Arc<dyn Authorizer> = rbac.clone();
    let ssar = AccessReview::self_subject(authz.clone());
    let admin = UserInfo {
        name: "kubernetes-admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Default::default()
    };
    let sa = sa_user();
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}});
    let out = ssar
        .create(&review_req(&admin), body.clone())
        .await
        .unwrap();
    assert_eq!(out["status"], json!({"allowed": true}));
    assert_eq!(out["spec"], body["spec"]);
    let out = ssar.create(&review_req(&sa), body.clone()).await.unwrap();
    assert_eq!(out["status"]["allowed"], false);
    let err = ssar
        .create(&review_req(&sa), json!({"spec": {}}))
        .await
        .unwrap_err();
    assert!(matches!(err, HookError::Invalid(ref e) if e[0].path == "spec.resourceAttributes"));

    let sar = AccessReview::subject(authz.clone());
    let out = sar.create(&review_req(&admin), json!({"spec": {"user": "x", "groups": ["system:masters"], "nonResourceAttributes": {"verb": "get", "path": "/metrics"}}})).await.unwrap();
    assert_eq!(out["status"]["allowed"], true);
    let out = sar.create(&review_req(&admin), json!({"spec": {"groups": ["system:authenticated"], "nonResourceAttributes": {"verb": "get", "path": "/version"}}})).await.unwrap();
    assert_eq!(out["status"]["allowed"], true);
    assert!(matches!(
        sar.create(
            &review_req(&admin),
            json!({"spec": {"resourceAttributes": {"verb": "get"}}})
        )
        .await,
        Err(HookError::Invalid(_))
    ));

    let local = AccessReview::local(authz);
    let in_ns = HookRequest {
        namespace: Some("default"),
        ..review_req(&admin)
    };
    let out = local.create(&in_ns, json!({"spec": {"user": "system:serviceaccount:default:reader", "resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}})).await.unwrap();
    assert_eq!(out["status"]["allowed"], false);
    assert_eq!(out["metadata"]["namespace"], "default");
    assert!(matches!(local.create(&in_ns, json!({"spec": {"user": "u", "resourceAttributes": {"namespace": "other", "verb": "list", "resource": "pods"}}})).await, Err(HookError::BadRequest(_))));
}

#[tokio::test]
async fn rules_review_lists_what_can_i_list_shows() {
    let (_store, rbac) = started().await;
    let r = SelfSubjectRulesReview::new(rbac);
    let u = UserInfo {
        name: "u".into(),
        groups: vec!["system:authenticated".into()],
        ..Default::default()
    };
    let out = r
        .create(&review_req(&u), json!({"spec": {"namespace": "default"}}))
        .await
        .unwrap();
    let res: &Vec<Value> = out["status"]["resourceRules"].as_array().unwrap();
    assert!(res.iter().any(|r| {
        r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("selfsubjectaccessreviews"))
    }));
    let non: &Vec<Value> = out["status"]["nonResourceRules"].as_array().unwrap();
    assert!(non.iter().any(|r| {
        r["nonResourceURLs"]
            .as_array()
            .unwrap()
            .contains(&json!("/version"))
    }));
    assert_eq!(out["status"]["incomplete"], false);
    assert!(matches!(
        r.create(&review_req(&u), json!({"spec": {}})).await,
        Err(HookError::BadRequest(_))
    ));
}

#[tokio::test]
async fn aggregation_controller_writes_resolved_rules() {
    let (store, rbac) = started().await;
    let task = tokio::spawn(
        skiff_apiserver::authz::aggregation::run_aggregation_controller(
            store.clone(),
            CLUSTER.to_string(),
            rbac.clone(),
        ),
    );
    let admin_key = rbac_key("clusterroles", None, "admin");
    let has_rule = |obj: &Value, resource: &str| {
        obj["rules"].as_array().is_some_and(|rs| {
            rs.iter().any(|r| {
                r["resources"]
                    .as_array()
                    .is_some_and(|x| x.contains(&json!(resource)))
            })
        })
    };
    let mut ok = false;
    for _ in 0..100 {
        let admin = store.get_json(&admin_key).await.unwrap();
        if has_rule(&admin, "rolebindings") && has_rule(&admin, "pods") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "admin's stored rules were filled");
    // A new labelled role shows up in the stored rules of view, edit and admin.
    store
        .put_json(&rbac_key("clusterroles", None, "widgets-view"), &json!({
            "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}],
        }))
        .await;
    let mut ok = false;
    for _ in 0..100 {
        let admin = store.get_json(&admin_key).await.unwrap();
        let view = store
            .get_json(&rbac_key("clusterroles", None, "view"))
            .await
            .unwrap();
        if has_rule(&admin, "widgets") && has_rule(&view, "widgets") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert!(ok, "aggregated roles picked up the new rule");
    // Steady state: nothing left to rewrite.
    let n = skiff_apiserver::authz::aggregation::reconcile_aggregated_roles(
        &*store,
        CLUSTER,
        &rbac.aggregated_rules(),
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
}
