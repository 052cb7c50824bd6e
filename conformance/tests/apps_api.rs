//! Black-box tests of the workload, budget and discovery kinds (apps/v1
//! Deployment, ReplicaSet, DaemonSet, ControllerRevision; policy/v1
//! PodDisruptionBudget with pod eviction; discovery.k8s.io/v1
//! EndpointSlice) with the stock kubectl against a real `rkube server`.
//! These test the API itself, so the servers run without their
//! controller-manager and statuses are written through the status
//! subresources the way controllers write them (the controllers' own tests
//! are controllers.rs, deployments.rs and workloads.rs). Names mirror the upstream
//! conformance tests (../shared/conformance/kubernetes-conformance-tests.tsv)
//! where one matches.

use conformance::Cluster;
use serde_json::Value;

/// A server whose statuses only the test writes.
fn api_only() -> Cluster {
    Cluster::start_with(&["--disable-controller-manager"])
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The column names of a kubectl table.
fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// The cells of the table row whose first cell is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn jsonpath(c: &Cluster, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let expr = format!("jsonpath={path}");
    all.extend(["-o", &expr]);
    c.ok(&all)
}

const WEB_RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [fe, edge]}]
  template:
    metadata: {labels: {app: web, tier: fe}}
    spec:
      containers: [{name: nginx, image: nginx:1.27}]
"#;

const AGENT_DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {kubernetes.io/os: linux}
      containers: [{name: agent, image: busybox}]
"#;

#[test]
fn sig_apps_deployment_deployment_should_have_a_working_scale_subresource() {
    let c = api_only();
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=3",
    ]);
    let table = c.ok(&["get", "deployments"]);
    assert_eq!(
        header(&table),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(row(&table, "web")[..4], ["web", "0/3", "0", "0"]);
    let wide = c.ok(&["get", "deploy", "web", "-o", "wide"]);
    assert_eq!(
        header(&wide)[5..],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
        "{wide}"
    );
    assert_eq!(row(&wide, "web")[5..], ["busybox", "busybox", "app=web"]);

    // Upstream's defaults, also in the pod template.
    let d = json(&c.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"],
        serde_json::json!({"maxSurge": "25%", "maxUnavailable": "25%"})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    let pod_spec = &d["spec"]["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Always");
    assert_eq!(pod_spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod_spec["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(d["status"], serde_json::json!({}));

    // kubectl scale goes through the scale subresource.
    let out = c.kubectl(&["scale", "deployment", "web", "--replicas=5", "-v=6"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("/deployments/web/scale"), "{log}");
    assert_eq!(
        jsonpath(
            &c,
            &["get", "deploy", "web"],
            "{.spec.replicas} {.metadata.generation}"
        ),
        "5 2"
    );
    let scale = json(&c.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(
        scale["status"],
        serde_json::json!({"replicas": 0, "selector": "app=web"})
    );
    assert_eq!(scale["metadata"]["uid"], d["metadata"]["uid"]);

    // A patch of the Scale changes the Deployment; a negative count does not.
    c.ok(&[
        "patch",
        "deployment",
        "web",
        "--subresource=scale",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
    ]);
    assert_eq!(
        jsonpath(&c, &["get", "deploy", "web"], "{.spec.replicas}"),
        "2"
    );
    let err = c.fails(&[
        "patch",
        "deployment",
        "web",
        "--subresource=scale",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":-3}}"#,
    ]);
    assert!(
        err.contains(r#"The Scale "web" is invalid: spec.replicas: Invalid value: -3: must be greater than or equal to 0"#),
        "{err}"
    );
    assert_eq!(
        jsonpath(&c, &["get", "deploy", "web"], "{.spec.replicas}"),
        "2"
    );

    // Annotations are desired state for Deployments: they bump the generation.
    c.ok(&["annotate", "deployment", "web", "team=storefront"]);
    assert_eq!(
        jsonpath(&c, &["get", "deploy", "web"], "{.metadata.generation}"),
        "4"
    );
}

#[test]
fn sig_apps_replicaset_replicaset_should_have_a_working_scale_subresource() {
    let c = api_only();
    c.ok_stdin(&["apply", "-f", "-"], WEB_RS);
    let table = c.ok(&["get", "rs", "-o", "wide"]);
    assert_eq!(
        header(&table),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let cells = row(&table, "web");
    assert_eq!(cells[..4], ["web", "2", "0", "0"]);
    assert_eq!(
        cells[5..],
        ["nginx", "nginx:1.27", "app=web,tier in (edge,fe)"]
    );
    // The Scale's selector is the set-based selector as a string.
    let scale = json(&c.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/replicasets/web/scale",
    ]));
    assert_eq!(scale["status"]["selector"], "app=web,tier in (edge,fe)");
    assert_eq!(scale["spec"]["replicas"], 2);
    c.ok(&["scale", "rs", "web", "--replicas=4"]);
    assert_eq!(row(&c.ok(&["get", "rs"]), "web")[1], "4");
    assert_eq!(
        jsonpath(&c, &["get", "rs", "web"], "{.metadata.generation}"),
        "2"
    );
    // A Scale update with a stale resourceVersion is a conflict.
    let mut stale = scale.clone();
    stale["spec"]["replicas"] = 1.into();
    let out = c.kubectl_stdin(
        &[
            "replace",
            "--raw",
            "/apis/apps/v1/namespaces/default/replicasets/web/scale",
            "-f",
            "-",
        ],
        Some(&stale.to_string()),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Conflict") || err.contains("modified"),
        "{err}"
    );
    assert_eq!(row(&c.ok(&["get", "rs"]), "web")[1], "4");
}

#[test]
fn sig_apps_deployment_should_validate_deployment_status_endpoints() {
    let c = api_only();
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=3",
    ]);
    let status = json(&c.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/status",
    ]));
    assert_eq!(status["kind"], "Deployment");
    // Patch the status as the controller would.
    c.ok(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"observedGeneration":1,"replicas":3,"updatedReplicas":3,"readyReplicas":2,"availableReplicas":1}}"#,
    ]);
    assert_eq!(
        row(&c.ok(&["get", "deploy"]), "web")[..4],
        ["web", "2/3", "3", "1"]
    );
    // Update it whole, with a condition.
    let mut d = json(&c.ok(&["get", "deploy", "web", "-o", "json"]));
    d["status"]["conditions"] = serde_json::json!([{
        "type": "StatusUpdate", "status": "True", "reason": "E2E",
        "message": "Set from e2e test",
        "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
    d["spec"]["replicas"] = 9.into();
    c.ok_stdin(
        &["replace", "--subresource=status", "-f", "-"],
        &d.to_string(),
    );
    let after = json(&c.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(after["status"]["conditions"][0]["type"], "StatusUpdate");
    // Status writes do not touch the spec or the generation.
    assert_eq!(after["spec"]["replicas"], 3);
    assert_eq!(after["metadata"]["generation"], 1);
    // Status counters are validated.
    let err = c.fails(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"readyReplicas":7}}"#,
    ]);
    assert!(
        err.contains(
            "status.readyReplicas: Invalid value: 7: cannot be greater than status.replicas"
        ),
        "{err}"
    );
    // And a main-resource update cannot write the status.
    c.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"readyReplicas":0}}"#,
    ]);
    assert_eq!(
        jsonpath(&c, &["get", "deploy", "web"], "{.status.readyReplicas}"),
        "2"
    );
}

#[test]
fn invalid_workloads_budgets_and_slices_are_422_with_the_field_path() {
    let c = api_only();
    let cases: &[(&str, &str)] = &[
        (
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d1"},
                "spec":{"selector":{"matchLabels":{"app":"one"}},
                        "template":{"metadata":{"labels":{"app":"two"}},
                                    "spec":{"containers":[{"name":"a","image":"b"}]}}}}"#,
            r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"two"}: `selector` does not match template `labels`"#,
        ),
        (
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d2"},
                "spec":{"template":{"metadata":{"labels":{"app":"one"}},
                                    "spec":{"containers":[{"name":"a","image":"b"}]}}}}"#,
            "spec.selector: Required value",
        ),
        (
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d3"},
                "spec":{"replicas":-1,"selector":{"matchLabels":{"app":"one"}},
                        "template":{"metadata":{"labels":{"app":"one"}},
                                    "spec":{"containers":[{"name":"a","image":"b"}]}}}}"#,
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d4"},
                "spec":{"selector":{"matchLabels":{"app":"one"}},
                        "strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":"0%"}},
                        "template":{"metadata":{"labels":{"app":"one"}},
                                    "spec":{"containers":[{"name":"a","image":"b"}]}}}}"#,
            r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: may not be 0 when `maxSurge` is 0"#,
        ),
        (
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d5"},
                "spec":{"selector":{"matchLabels":{"app":"one"}},
                        "strategy":{"type":"Recreate","rollingUpdate":{"maxSurge":1}},
                        "template":{"metadata":{"labels":{"app":"one"}},
                                    "spec":{"containers":[{"name":"a","image":"b"}]}}}}"#,
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
        ),
        (
            r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r1"},
                "spec":{"selector":{"matchLabels":{"app":"one"}},
                        "template":{"metadata":{"labels":{"app":"one"}},
                                    "spec":{"restartPolicy":"Never",
                                            "containers":[{"name":"a","image":"b"}]}}}}"#,
            r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#,
        ),
        (
            r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"ds1"},
                "spec":{"selector":{"matchLabels":{"app":"one"}},
                        "updateStrategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":1}},
                        "template":{"metadata":{"labels":{"app":"one"}},
                                    "spec":{"containers":[{"name":"a","image":"b"}]}}}}"#,
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when maxUnavailable is non-zero",
        ),
        (
            r#"{"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"cr1"},
                "revision":1}"#,
            "data: Required value: data is mandatory",
        ),
        (
            r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"p1"},
                "spec":{"minAvailable":1,"maxUnavailable":1}}"#,
            "minAvailable and maxUnavailable cannot be both set",
        ),
        (
            r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"p2"},
                "spec":{"maxUnavailable":"120%"}}"#,
            r#"spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"120%"}: must not be greater than 100%"#,
        ),
        (
            r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s1"},
                "endpoints":[{"addresses":["10.0.0.1"]}]}"#,
            "addressType: Required value",
        ),
        (
            r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s2"},
                "addressType":"IPv4","endpoints":[{"addresses":["fd00::1"]},{"addresses":[]}]}"#,
            r#"endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address"#,
        ),
    ];
    for (body, message) in cases {
        let out = c.kubectl_stdin(&["create", "-f", "-", "-v=6"], Some(body));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted: {body}");
        assert!(err.contains("422 Unprocessable Entity"), "{err}");
        assert!(err.contains(" is invalid: "), "{err}");
        assert!(err.contains(message), "want {message}\ngot {err}");
    }
    assert!(
        c.ok(&["get", "deploy,rs,ds,pdb,endpointslices,controllerrevisions"])
            .trim()
            .is_empty(),
        "nothing invalid was stored"
    );
}

#[test]
fn workload_selectors_are_immutable() {
    let c = api_only();
    c.ok(&["create", "deployment", "web", "--image=busybox"]);
    c.ok_stdin(&["apply", "-f", "-"], WEB_RS);
    c.ok_stdin(&["apply", "-f", "-"], AGENT_DS);
    let new_selector = r#"{"spec":{"selector":{"matchLabels":{"app":"web","v":"2"}},
        "template":{"metadata":{"labels":{"app":"web","v":"2"}}}}}"#;
    let err = c.fails(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        new_selector,
    ]);
    assert!(
        err.contains(r#"The Deployment "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#),
        "{err}"
    );
    for kind in ["rs/web", "ds/agent"] {
        let err = c.fails(&["patch", kind, "--type=merge", "-p", new_selector]);
        assert!(
            err.contains("spec.selector: Invalid value: v1.LabelSelector{")
                && err.contains("field is immutable"),
            "{kind}: {err}"
        );
    }
    assert_eq!(
        jsonpath(
            &c,
            &["get", "deploy", "web"],
            "{.spec.selector.matchLabels}"
        ),
        r#"{"app":"web"}"#
    );
}

#[test]
fn kubectl_lists_the_apps_policy_and_discovery_kinds() {
    let c = api_only();
    let resources = c.ok(&["api-resources"]);
    for (name, short, group) in [
        ("deployments", "deploy", "apps/v1"),
        ("replicasets", "rs", "apps/v1"),
        ("daemonsets", "ds", "apps/v1"),
        ("poddisruptionbudgets", "pdb", "policy/v1"),
    ] {
        let line = resources
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{resources}"));
        assert!(
            line.contains(&format!(" {short} ")) && line.contains(group),
            "{line}"
        );
    }
    for name in ["controllerrevisions", "endpointslices"] {
        assert!(
            resources
                .lines()
                .any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing:\n{resources}"
        );
    }
    let all = c.ok(&["api-resources", "--categories=all", "-o", "name"]);
    for name in ["deployments.apps", "replicasets.apps", "daemonsets.apps"] {
        assert!(all.lines().any(|l| l == name), "{name} not in:\n{all}");
    }

    c.ok(&["create", "deployment", "web", "--image=busybox"]);
    c.ok_stdin(&["apply", "-f", "-"], WEB_RS);
    c.ok_stdin(&["apply", "-f", "-"], AGENT_DS);
    c.ok(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--max-unavailable=25%",
    ]);
    let out = c.ok(&["get", "rs,ds,deploy,pdb"]);
    for name in [
        "replicaset.apps/web",
        "daemonset.apps/agent",
        "deployment.apps/web",
        "poddisruptionbudget.policy/web",
    ] {
        assert!(out.contains(name), "{name} not in:\n{out}");
    }
    assert!(c.ok(&["get", "all"]).contains("deployment.apps/web"));

    let ds = c.ok(&["get", "ds"]);
    assert_eq!(
        header(&ds),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE"
        ]
    );
    assert_eq!(
        row(&ds, "agent")[..7],
        ["agent", "0", "0", "0", "0", "0", "kubernetes.io/os=linux"]
    );
    let pdb = c.ok(&["get", "pdb"]);
    assert_eq!(
        header(&pdb),
        [
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE"
        ]
    );
    assert_eq!(row(&pdb, "web")[..4], ["web", "N/A", "25%", "0"]);

    // DaemonSets carry their template generation in an annotation.
    let generation = |c: &Cluster| {
        jsonpath(
            c,
            &["get", "ds", "agent"],
            r#"{.metadata.annotations.deprecated\.daemonset\.template\.generation} {.metadata.generation}"#,
        )
    };
    assert_eq!(generation(&c), "1 1");
    c.ok(&["set", "image", "ds/agent", "agent=busybox:1.36"]);
    assert_eq!(generation(&c), "2 2");
    c.ok(&["label", "ds", "agent", "team=infra"]);
    assert_eq!(generation(&c), "2 2");

    // ControllerRevisions and EndpointSlices print like upstream.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"apps/v1","kind":"ControllerRevision",
            "metadata":{"name":"agent-7f9c","ownerReferences":[{"apiVersion":"apps/v1",
              "kind":"DaemonSet","name":"agent","uid":"u1","controller":true}]},
            "data":{"spec":{"template":{}}},"revision":3}"#,
    );
    let cr = c.ok(&["get", "controllerrevisions"]);
    assert_eq!(header(&cr), ["NAME", "CONTROLLER", "REVISION", "AGE"]);
    assert_eq!(
        row(&cr, "agent-7f9c")[..3],
        ["agent-7f9c", "daemonset.apps/agent", "3"]
    );
    let err = c.fails(&[
        "patch",
        "controllerrevision",
        "agent-7f9c",
        "--type=merge",
        "-p",
        r#"{"data":{"spec":{"template":{"x":1}}}}"#,
    ]);
    assert!(
        err.contains("data: Invalid value") && err.contains("field is immutable"),
        "{err}"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
            "metadata":{"name":"web-x1","labels":{"kubernetes.io/service-name":"web"}},
            "addressType":"IPv4",
            "endpoints":[{"addresses":["10.1.0.1"]},{"addresses":["10.1.0.2"]},
                         {"addresses":["10.1.0.3"]},{"addresses":["10.1.0.4"]}],
            "ports":[{"name":"http","port":80}]}"#,
    );
    let eps = c.ok(&["get", "endpointslices"]);
    assert_eq!(
        header(&eps),
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    );
    assert_eq!(
        row(&eps, "web-x1")[..4],
        [
            "web-x1",
            "IPv4",
            "80",
            "10.1.0.1,10.1.0.2,10.1.0.3 + 1 more..."
        ]
    );
    assert_eq!(
        jsonpath(
            &c,
            &["get", "endpointslice", "web-x1"],
            "{.ports[0].protocol} {.metadata.generation}"
        ),
        "TCP 1"
    );
    c.ok(&["label", "endpointslice", "web-x1", "x=y"]);
    assert_eq!(
        jsonpath(
            &c,
            &["get", "endpointslice", "web-x1"],
            "{.metadata.generation}"
        ),
        "2"
    );

    // Field selectors: the metadata fields, and upstream's refusal of others.
    let names = c.ok(&[
        "get",
        "rs",
        "--field-selector",
        "metadata.name=web",
        "-o",
        "name",
    ]);
    assert_eq!(names.trim(), "replicaset.apps/web");
    let none = c.ok(&[
        "get",
        "deploy",
        "--field-selector",
        "metadata.namespace=other",
        "-o",
        "name",
    ]);
    assert!(none.trim().is_empty(), "{none}");
    let err = c.fails(&["get", "rs", "--field-selector", "status.replicas=0"]);
    assert!(
        err.contains(r#""status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace""#),
        "{err}"
    );
}

/// A pod created through the API (no kubelet runs it) with the phase and
/// readiness a kubelet would report, written through pods/status.
fn pod_with_status(c: &Cluster, name: &str, labels: &str, phase: &str, ready: bool) {
    c.ok(&[
        "run",
        name,
        "--image=busybox",
        "--restart=Never",
        &format!("--labels={labels}"),
    ]);
    let ready = if ready { "True" } else { "False" };
    c.ok(&[
        "patch",
        "pod",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"phase":"{phase}","conditions":[{{"type":"Ready","status":"{ready}"}}]}}}}"#
        ),
    ]);
}

/// What the disruption controller would write into a budget's status.
fn set_budget_status(c: &Cluster, name: &str, allowed: i64, current: i64, desired: i64) {
    c.ok(&[
        "patch",
        "pdb",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"observedGeneration":1,"disruptionsAllowed":{allowed},"currentHealthy":{current},"desiredHealthy":{desired},"expectedPods":{current}}}}}"#
        ),
    ]);
}

/// POSTs a policy/v1 Eviction for `pod`; whether it succeeded, and kubectl's
/// log at -v=8 (which holds the response code and body).
fn evict(c: &Cluster, pod: &str) -> (bool, String) {
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#
    );
    let out = c.kubectl_stdin(
        &[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
            "-f",
            "-",
            "-v=8",
        ],
        Some(&body),
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), log)
}

fn pod_exists(c: &Cluster, name: &str) -> bool {
    c.kubectl(&["get", "pod", name]).status.success()
}

#[test]
fn sig_apps_disruptioncontroller_should_block_an_eviction_until_the_pdb_is_updated_to_allow_it() {
    let c = api_only();
    c.ok(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=2",
    ]);
    pod_with_status(&c, "web-1", "app=web", "Running", true);
    pod_with_status(&c, "web-2", "app=web", "Running", true);

    // A budget whose status the controller has not written yet refuses.
    let (ok, log) = evict(&c, "web-1");
    assert!(!ok);
    assert!(log.contains("429 Too Many Requests"), "{log}");
    assert!(
        log.contains("The disruption budget web is still being processed by the server."),
        "{log}"
    );

    // No disruption allowed: 429 with upstream's message and cause.
    set_budget_status(&c, "web", 0, 2, 2);
    let (ok, log) = evict(&c, "web-1");
    assert!(!ok);
    assert!(log.contains("429 Too Many Requests"), "{log}");
    assert!(
        log.contains("Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget."),
        "{log}"
    );
    assert!(log.contains(r#""reason": "DisruptionBudget""#), "{log}");
    assert!(
        log.contains("The disruption budget web needs 2 healthy pods and has 2 currently"),
        "{log}"
    );
    assert!(pod_exists(&c, "web-1"));

    // One allowed: the pod is evicted and the budget spent.
    set_budget_status(&c, "web", 1, 3, 2);
    let (ok, log) = evict(&c, "web-1");
    assert!(ok, "{log}");
    assert!(log.contains(r#""status":"Success""#), "{log}");
    assert!(!pod_exists(&c, "web-1"));
    let pdb = json(&c.ok(&["get", "pdb", "web", "-o", "json"]));
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert!(pdb["status"]["disruptedPods"]["web-1"].is_string(), "{pdb}");
    let allowed = pdb["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionAllowed"))
        .unwrap_or_else(|| panic!("no DisruptionAllowed condition: {pdb}"));
    assert_eq!(allowed["status"], "False");
    assert_eq!(allowed["reason"], "InsufficientPods");
    assert_eq!(row(&c.ok(&["get", "pdb"]), "web")[3], "0");

    // The budget is spent, so the next pod stays.
    let (ok, log) = evict(&c, "web-2");
    assert!(!ok && log.contains("429 Too Many Requests"), "{log}");
    assert!(pod_exists(&c, "web-2"));
}

#[test]
fn evictions_skip_budgets_for_pods_that_are_not_running_and_ready() {
    let c = api_only();
    c.ok(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    set_budget_status(&c, "web", 0, 0, 1);
    // Pods that are not running disrupt nothing: they go despite the budget.
    c.ok(&[
        "run",
        "pending",
        "--image=busybox",
        "--restart=Never",
        "--labels=app=web",
    ]);
    pod_with_status(&c, "done", "app=web", "Succeeded", false);
    pod_with_status(&c, "failed", "app=web", "Failed", false);
    for pod in ["pending", "done", "failed"] {
        let (ok, log) = evict(&c, pod);
        assert!(ok, "{pod}: {log}");
        assert!(!pod_exists(&c, pod), "{pod}");
    }
    // A running but unready pod of a budget that is not satisfied stays...
    pod_with_status(&c, "unready", "app=web", "Running", false);
    let (ok, log) = evict(&c, "unready");
    assert!(!ok && log.contains("429 Too Many Requests"), "{log}");
    // ...unless the budget says unhealthy pods may always go.
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"unhealthyPodEvictionPolicy":"AlwaysAllow"}}"#,
    ]);
    let (ok, log) = evict(&c, "unready");
    assert!(ok, "{log}");
    assert!(!pod_exists(&c, "unready"));
    // Pods no budget selects are evicted freely.
    pod_with_status(&c, "other", "app=other", "Running", true);
    let (ok, log) = evict(&c, "other");
    assert!(ok, "{log}");
    // Two budgets over one pod: upstream's 500 Status.
    c.ok(&[
        "create",
        "pdb",
        "web2",
        "--selector=app=web",
        "--max-unavailable=1",
    ]);
    pod_with_status(&c, "shared", "app=web", "Running", true);
    let (ok, log) = evict(&c, "shared");
    assert!(!ok);
    assert!(
        log.contains("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."),
        "{log}"
    );
    assert!(pod_exists(&c, "shared"));
    // The name in the body must be the pod's.
    let out = c.kubectl_stdin(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/shared/eviction",
            "-f",
            "-",
        ],
        Some(r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"other"}}"#),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("name in URL does not match name in Eviction object"),
        "{err}"
    );
}

#[test]
fn sig_apps_disruptioncontroller_should_update_patch_poddisruptionbudget_status() {
    let c = api_only();
    c.ok(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    let pdb = json(&c.ok(&["get", "pdb", "web", "-o", "json"]));
    assert_eq!(pdb["metadata"]["generation"], 1);
    assert_eq!(
        pdb["status"],
        serde_json::json!({"currentHealthy": 0, "desiredHealthy": 0,
                           "disruptionsAllowed": 0, "expectedPods": 0})
    );
    // Update the status with a condition, then patch it.
    let mut updated = pdb.clone();
    updated["status"]["conditions"] = serde_json::json!([{
        "type": "StatusUpdate", "status": "True", "reason": "E2E",
        "message": "Set from an e2e test", "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
    c.ok_stdin(
        &["replace", "--subresource=status", "-f", "-"],
        &updated.to_string(),
    );
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"observedGeneration":1,"disruptionsAllowed":2,"currentHealthy":3,"desiredHealthy":1,"expectedPods":3}}"#,
    ]);
    let pdb = json(&c.ok(&["get", "pdb", "web", "-o", "json"]));
    assert_eq!(pdb["status"]["conditions"][0]["type"], "StatusUpdate");
    assert_eq!(pdb["status"]["disruptionsAllowed"], 2);
    assert_eq!(
        row(&c.ok(&["get", "pdb"]), "web")[..4],
        ["web", "1", "N/A", "2"]
    );
    // Status writes keep the spec; spec writes keep the status and bump
    // the generation.
    assert_eq!(pdb["metadata"]["generation"], 1);
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":2},"status":{"disruptionsAllowed":0}}"#,
    ]);
    assert_eq!(
        jsonpath(
            &c,
            &["get", "pdb", "web"],
            "{.metadata.generation} {.spec.minAvailable} {.status.disruptionsAllowed}"
        ),
        "2 2 2"
    );
    // Invalid status values and conditions are refused.
    let err = c.fails(&[
        "patch",
        "pdb",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"disruptionsAllowed":-1}}"#,
    ]);
    assert!(
        err.contains(
            "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{err}"
    );
    let err = c.fails(&[
        "patch",
        "pdb",
        "web",
        "--subresource=status",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/status/conditions/0/status","value":"Maybe"}]"#,
    ]);
    assert!(
        err.contains(r#"status.conditions[0].status: Unsupported value: "Maybe""#),
        "{err}"
    );
}
