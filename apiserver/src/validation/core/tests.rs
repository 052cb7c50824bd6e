//! Per-kind validation tests: exact paths, reasons and messages for representative
//! failures, and acceptance of well-formed (defaulted) objects.

use serde_json::{json, Value};

use super::{validate, validate_update};
use crate::defaults::apply_defaults;
use crate::validation::field_error::{invalid_message, FieldErrors};

fn defaulted(kind: &str, mut obj: Value) -> Value {
    apply_defaults(kind, &mut obj);
    obj
}

fn msgs(errs: &FieldErrors) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn pod(spec: Value) -> Value {
    defaulted(
        "Pod",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec}),
    )
}

fn nginx() -> Value {
    json!({"containers": [{"name": "web", "image": "nginx:1.25"}]})
}

#[test]
fn valid_pod_passes() {
    let p = pod(json!({
        "containers": [{
            "name": "web", "image": "nginx",
            "ports": [{"containerPort": 80, "name": "http"}],
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
            "livenessProbe": {"httpGet": {"port": 80}},
        }],
        "volumes": [{"name": "data"}, {"name": "cfg", "configMap": {"name": "c"}}],
    }));
    let errs = validate("Pod", &p);
    assert!(errs.is_empty(), "{:?}", msgs(&errs));
}

#[test]
fn pod_bad_name() {
    let mut p = pod(nginx());
    p["metadata"]["name"] = json!("Foo_bar");
    let errs = validate("Pod", &p);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "metadata.name");
    assert_eq!(errs[0].reason(), "FieldValueInvalid");
    assert_eq!(
        invalid_message("Pod", "Foo_bar", &errs),
        "Pod \"Foo_bar\" is invalid: metadata.name: Invalid value: \"Foo_bar\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
}

#[test]
fn pod_missing_containers() {
    let errs = validate("Pod", &pod(json!({})));
    assert_eq!(msgs(&errs), vec!["spec.containers: Required value"]);
}

#[test]
fn pod_duplicate_container_names_and_missing_image() {
    let errs = validate(
        "Pod",
        &pod(json!({"containers": [{"name": "a", "image": "x"}, {"name": "a"}]})),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.containers[1].image: Required value",
            "spec.containers[1].name: Duplicate value: \"a\""
        ]
    );
}

#[test]
fn pod_bad_container_name() {
    let errs = validate(
        "Pod",
        &pod(json!({"containers": [{"name": "Web", "image": "x"}]})),
    );
    assert_eq!(errs[0].field, "spec.containers[0].name");
    assert!(errs[0].detail.starts_with("a lowercase RFC 1123 label"));
}

#[test]
fn pod_bad_ports() {
    let errs = validate(
        "Pod",
        &pod(json!({"containers": [{"name": "a", "image": "x", "ports": [
            {"containerPort": 70000, "protocol": "HTTP", "name": "web"},
            {"containerPort": 80, "name": "web"},
            {"name": "x"}
        ]}]})),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].ports[1].name: Duplicate value: \"web\"",
            "spec.containers[0].ports[2].containerPort: Required value",
        ]
    );
}

#[test]
fn pod_env_names_and_sources() {
    let errs = validate(
        "Pod",
        &pod(json!({"containers": [{"name": "a", "image": "x", "env": [
            {"name": "A=B", "value": "1"},
            {"name": "", "value": "1"},
            {"name": "C", "valueFrom": {}},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": ""}}}
        ]}]})),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].env[1].name: Required value",
            "spec.containers[0].env[2].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            "spec.containers[0].env[3].valueFrom.secretKeyRef.key: Required value",
        ]
    );
}

#[test]
fn pod_volumes_and_mounts() {
    let errs = validate(
        "Pod",
        &pod(json!({
            "volumes": [{"name": "a"}, {"name": "a"}, {"name": "Bad"}],
            "containers": [{"name": "c", "image": "x", "volumeMounts": [
                {"name": "missing", "mountPath": "/m"},
                {"name": "a", "mountPath": "/m"}
            ]}]
        })),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.volumes[1].name: Duplicate value: \"a\"",
            "spec.volumes[2].name: Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/m\": must be unique",
        ]
    );
}

#[test]
fn pod_two_volume_types() {
    let errs = validate(
        "Pod",
        &pod(
            json!({"volumes": [{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}], "containers": [{"name": "c", "image": "x"}]}),
        ),
    );
    assert_eq!(
        msgs(&errs),
        vec!["spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type"]
    );
}

#[test]
fn pod_enums() {
    let mut p = pod(nginx());
    p["spec"]["restartPolicy"] = json!("Sometimes");
    p["spec"]["dnsPolicy"] = json!("Bogus");
    p["spec"]["containers"][0]["imagePullPolicy"] = json!("Maybe");
    let errs = validate("Pod", &p);
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Bogus\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ]
    );
}

#[test]
fn pod_requests_above_limits() {
    let errs = validate(
        "Pod",
        &pod(
            json!({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"memory": "1Gi"}, "requests": {"memory": "2Gi"}}}]}),
        ),
    );
    assert_eq!(
        msgs(&errs),
        vec!["spec.containers[0].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi"]
    );
}

#[test]
fn pod_probe_rules() {
    let errs = validate(
        "Pod",
        &pod(json!({"containers": [{"name": "c", "image": "x",
            "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
            "readinessProbe": {},
            "startupProbe": {"tcpSocket": {"port": "http-port-too-long"}}
        }]})),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            "spec.containers[0].startupProbe.tcpSocket.port: Invalid value: \"http-port-too-long\": must be no more than 15 characters",
        ]
    );
}

#[test]
fn pod_init_container_probe_forbidden() {
    let errs = validate(
        "Pod",
        &pod(
            json!({"initContainers": [{"name": "i", "image": "x", "readinessProbe": {"exec": {"command": ["a"]}}}], "containers": [{"name": "c", "image": "x"}]}),
        ),
    );
    assert_eq!(
        msgs(&errs),
        vec!["spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"]
    );
}

#[test]
fn pod_tolerations() {
    let errs = validate(
        "Pod",
        &pod(
            json!({"containers": [{"name": "c", "image": "x"}], "tolerations": [
                {"operator": "Equal", "value": "x"},
                {"key": "k", "operator": "Exists", "value": "v", "effect": "NoRun"}
            ]}),
        ),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
            "spec.tolerations[1].effect: Unsupported value: \"NoRun\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
        ]
    );
}

fn stored_pod() -> Value {
    let mut p = pod(
        json!({"containers": [{"name": "c", "image": "nginx:1"}], "tolerations": [{"key": "a", "operator": "Exists"}]}),
    );
    p["metadata"]["resourceVersion"] = json!("1");
    p["metadata"]["uid"] = json!("u");
    p
}

#[test]
fn pod_update_image_and_deadline_allowed() {
    let old = stored_pod();
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    new["spec"]["activeDeadlineSeconds"] = json!(30);
    new["spec"]["tolerations"] =
        json!([{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]);
    let errs = validate_update("Pod", &new, &old);
    assert!(errs.is_empty(), "{:?}", msgs(&errs));
}

#[test]
fn pod_update_spec_forbidden() {
    let old = stored_pod();
    let mut new = old.clone();
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let errs = validate_update("Pod", &new, &old);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec");
    assert_eq!(errs[0].reason(), "FieldValueForbidden");
    assert!(errs[0].message().starts_with(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
    ));
    assert!(errs[0].detail.contains("spec.containers[0].ports"));
}

#[test]
fn pod_update_container_count_and_tolerations() {
    let old = stored_pod();
    let mut new = old.clone();
    new["spec"]["containers"] = json!([]);
    assert_eq!(
        msgs(&validate_update("Pod", &new, &old)).last().unwrap(),
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    );
    let mut new = old.clone();
    new["spec"]["tolerations"] = json!([]);
    assert_eq!(
        msgs(&validate_update("Pod", &new, &old)),
        vec!["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]
    );
}

fn rc(spec: Value) -> Value {
    defaulted(
        "ReplicationController",
        json!({"metadata": {"name": "r", "namespace": "ns"}, "spec": spec}),
    )
}

#[test]
fn rc_valid_and_defaults_selector() {
    let r = rc(json!({"template": {"metadata": {"labels": {"app": "a"}}, "spec": nginx()}}));
    assert!(
        validate("ReplicationController", &r).is_empty(),
        "{:?}",
        msgs(&validate("ReplicationController", &r))
    );
}

#[test]
fn rc_rules() {
    let r = rc(
        json!({"replicas": -1, "selector": {"app": "b"}, "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}),
    );
    assert_eq!(
        msgs(&validate("ReplicationController", &r)),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
        ]
    );
    let r = rc(json!({}));
    assert_eq!(
        msgs(&validate("ReplicationController", &r)),
        vec![
            "spec.selector: Required value",
            "spec.template: Required value"
        ]
    );
}

fn svc(spec: Value) -> Value {
    defaulted(
        "Service",
        json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": spec}),
    )
}

#[test]
fn service_valid_variants() {
    for s in [
        svc(json!({"ports": [{"port": 80}], "selector": {"app": "a"}})),
        svc(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})),
        svc(
            json!({"type": "LoadBalancer", "ports": [{"port": 80, "name": "a"}, {"port": 443, "name": "b"}]}),
        ),
        svc(json!({"clusterIP": "None", "selector": {"app": "a"}})),
        svc(json!({"type": "ExternalName", "externalName": "example.com."})),
    ] {
        let errs = validate("Service", &s);
        assert!(errs.is_empty(), "{s}: {:?}", msgs(&errs));
    }
}

#[test]
fn service_errors() {
    assert_eq!(
        msgs(&validate("Service", &svc(json!({})))),
        vec!["spec.ports: Required value"]
    );
    let errs = validate(
        "Service",
        &svc(
            json!({"type": "NodePort", "ports": [{"port": 0}, {"port": 80, "nodePort": 80, "name": "b"}]}),
        ),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.ports[0].name: Required value",
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[1].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ]
    );
    let errs = validate("Service", &svc(json!({"type": "ExternalName"})));
    assert_eq!(msgs(&errs), vec!["spec.externalName: Required value"]);
    let errs = validate(
        "Service",
        &svc(json!({"type": "Fancy", "ports": [{"port": 80}], "sessionAffinity": "Sticky"})),
    );
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
            "spec.type: Unsupported value: \"Fancy\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        ]
    );
    let errs = validate(
        "Service",
        &svc(json!({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]})),
    );
    assert_eq!(
        msgs(&errs),
        vec!["spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    );
    let errs = validate(
        "Service",
        &svc(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
    );
    assert_eq!(msgs(&errs), vec!["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]);
    let errs = validate(
        "Service",
        &svc(json!({"ports": [{"port": 80, "nodePort": 30001}]})),
    );
    assert_eq!(
        msgs(&errs),
        vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    );
}

#[test]
fn service_cluster_ip_immutable() {
    let mut old = svc(json!({"clusterIP": "10.0.0.10", "ports": [{"port": 80}]}));
    old["metadata"]["resourceVersion"] = json!("3");
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("10.0.0.11");
    new["spec"]["clusterIPs"] = json!(["10.0.0.11"]);
    assert_eq!(
        msgs(&validate_update("Service", &new, &old)),
        vec!["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.11\"}: may not change once set"]
    );
    let mut same = old.clone();
    same["spec"].as_object_mut().unwrap().remove("clusterIP");
    same["spec"].as_object_mut().unwrap().remove("clusterIPs");
    assert!(validate_update("Service", &same, &old).is_empty());
}

fn cm(data: Value) -> Value {
    json!({"metadata": {"name": "c", "namespace": "ns"}, "data": data})
}

#[test]
fn config_map_rules() {
    assert!(validate("ConfigMap", &cm(json!({"a.b": "x"}))).is_empty());
    let errs = validate("ConfigMap", &cm(json!({"bad key": "x"})));
    assert_eq!(
        msgs(&errs),
        vec!["data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]
    );
    let mut both = cm(json!({"k": "x"}));
    both["binaryData"] = json!({"k": "eA=="});
    assert_eq!(
        msgs(&validate("ConfigMap", &both)),
        vec!["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"]
    );
    let big = cm(json!({"k": "x".repeat(1024 * 1024 + 1)}));
    assert_eq!(
        msgs(&validate("ConfigMap", &big)),
        vec![": Too long: may not be more than 1048576 bytes"]
    );
}

#[test]
fn config_map_immutable() {
    let mut old = cm(json!({"k": "1"}));
    old["immutable"] = json!(true);
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = old.clone();
    new["data"]["k"] = json!("2");
    assert_eq!(
        msgs(&validate_update("ConfigMap", &new, &old)),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn secret_rules() {
    let tls = defaulted(
        "Secret",
        json!({"metadata": {"name": "t", "namespace": "ns"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
    );
    assert_eq!(
        msgs(&validate("Secret", &tls)),
        vec!["data[tls.key]: Required value"]
    );
    let docker = json!({"metadata": {"name": "d", "namespace": "ns"}, "type": "kubernetes.io/dockerconfigjson", "data": {}});
    assert_eq!(
        msgs(&validate("Secret", &docker)),
        vec!["data[.dockerconfigjson]: Required value"]
    );
    let ok = json!({"metadata": {"name": "d", "namespace": "ns"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{\"auths\":{}}"}});
    assert!(validate("Secret", &ok).is_empty());
    let mut old = defaulted(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "ns", "resourceVersion": "1"}}),
    );
    let mut new = old.clone();
    new["type"] = json!("kubernetes.io/tls");
    new["data"] = json!({"tls.crt": "", "tls.key": ""});
    assert_eq!(
        msgs(&validate_update("Secret", &new, &old)),
        vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
    );
    old["type"] = json!("Opaque");
}

#[test]
fn namespace_rules() {
    let ns = defaulted("Namespace", json!({"metadata": {"name": "team-a"}}));
    assert!(validate("Namespace", &ns).is_empty());
    let bad = defaulted("Namespace", json!({"metadata": {"name": "team.a"}}));
    assert_eq!(
        msgs(&validate("Namespace", &bad)),
        vec!["metadata.name: Invalid value: \"team.a\": must not contain dots"]
    );
}

#[test]
fn other_kinds() {
    let ep = json!({"metadata": {"name": "e", "namespace": "ns"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}]}]});
    assert_eq!(
        msgs(&validate("Endpoints", &ep)),
        vec!["subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"]
    );
    let node =
        json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "effect": "Never"}]}});
    assert_eq!(
        msgs(&validate("Node", &node)),
        vec!["metadata.taints[0].effect: Unsupported value: \"Never\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""]
    );
    let sa = json!({"metadata": {"name": "Bad", "namespace": "ns"}});
    assert_eq!(validate("ServiceAccount", &sa)[0].field, "metadata.name");
    let rq = json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": {"pods": "1.5", "cpu": "-1"}}});
    assert_eq!(
        msgs(&validate("ResourceQuota", &rq)),
        vec![
            "spec.hard[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
            "spec.hard[pods]: Invalid value: \"1500m\": must be an integer",
        ]
    );
    let lr = json!({"metadata": {"name": "l", "namespace": "ns"}, "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}});
    assert_eq!(
        msgs(&validate("LimitRange", &lr))[0],
        "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"
    );
    let b = json!({"metadata": {"name": "p"}, "target": {"kind": "Pod"}});
    assert_eq!(
        msgs(&validate("Binding", &b)),
        vec![
            "target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\"",
            "target.name: Required value"
        ]
    );
    let ev = json!({"metadata": {"name": "p", "namespace": "default"}, "deleteOptions": {"propagationPolicy": "Now"}});
    assert_eq!(
        msgs(&validate("Eviction", &ev)),
        vec!["propagationPolicy: Unsupported value: \"Now\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""]
    );
}

#[test]
fn events() {
    let core = json!({"apiVersion": "v1", "metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"namespace": "b"}});
    assert_eq!(
        msgs(&validate("Event", &core)),
        vec!["involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"]
    );
    let strict = json!({"apiVersion": "events.k8s.io/v1", "metadata": {"name": "e", "namespace": "a"},
        "regarding": {"namespace": "a"}, "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "ctl",
        "reportingInstance": "i", "action": "Act", "reason": "R", "type": "Normal"});
    assert!(
        validate("Event", &strict).is_empty(),
        "{:?}",
        msgs(&validate("Event", &strict))
    );
    let mut bad = strict.clone();
    bad["type"] = json!("Info");
    bad.as_object_mut().unwrap().remove("reportingController");
    assert_eq!(
        msgs(&validate("Event", &bad)),
        vec![
            "reportingController: Required value",
            "reportingController: Invalid value: \"\": name part must be non-empty",
            "reportingController: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "type: Invalid value: \"\": has invalid value: Info",
        ]
    );
}

#[test]
fn unknown_kind_is_ignored() {
    assert!(validate("Widget", &json!({})).is_empty());
    assert!(validate_update("Widget", &json!({}), &json!({})).is_empty());
}
