//! Tests for the protobuf codec.
//!
//! Three kinds of evidence: bodies captured from a real kubectl v1.32.4 (testdata/, with the
//! JSON `kubectl ... --dry-run=client -o json` printed for the same command), messages built
//! and encoded with the prost types of the k8s-pb crate (an independent oracle for field
//! numbers and wire shapes, checked in both directions), and robustness runs over truncated,
//! mutated and random input.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::discovery::v1 as discovery;
use k8s_pb::api::policy::v1 as policy;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{json, Value};

use super::schema_gen::{KINDS, MESSAGES};
use super::*;

/// Wraps prost-encoded object bytes in the `k8s\0` + runtime.Unknown envelope, using k8s-pb's
/// own Unknown message.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// Splits an envelope written by `encode` with k8s-pb's Unknown and checks its TypeMeta.
fn open_envelope(body: &[u8], api_version: &str, kind: &str) -> Vec<u8> {
    let rest = body.strip_prefix(b"k8s\0").expect("magic prefix");
    let unknown = Unknown::decode(rest).expect("Unknown decodes");
    let tm = unknown.type_meta.expect("type meta");
    assert_eq!(tm.api_version.as_deref(), Some(api_version));
    assert_eq!(tm.kind.as_deref(), Some(kind));
    unknown.raw.expect("raw")
}

/// The oracle check used by most tests: prost bytes decode to `expected`, and `expected`
/// encodes back to bytes that prost decodes to the original struct.
fn check_both_ways<M: Message + Default + PartialEq + std::fmt::Debug>(
    api_version: &str,
    kind: &str,
    original: &M,
    expected: Value,
) {
    let body = envelope(api_version, kind, original.encode_to_vec());
    let decoded = decode(&body).expect("decodes");
    assert_eq!(decoded, expected, "decoded JSON differs");
    assert!(supports(api_version, kind));

    let encoded = encode(&expected).expect("encodes");
    let raw = open_envelope(&encoded, api_version, kind);
    let back = M::decode(raw.as_slice()).expect("prost decodes our encoding");
    assert_eq!(&back, original, "re-encoded message differs");
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn int_or_string_int(v: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: s(""),
    })
}

fn int_or_string_str(v: &str) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    })
}

fn name_meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
// The generated table

#[test]
fn schema_table_is_consistent() {
    for (i, m) in MESSAGES.iter().enumerate() {
        let mut last = 0;
        let mut names = std::collections::BTreeSet::new();
        for f in m.fields {
            assert!(f.num > last, "{}: fields out of order at {}", m.name, f.num);
            last = f.num;
            if let schema::Kind::Msg(r) | schema::Kind::MapMsg(r) = f.kind {
                assert!(
                    usize::from(r) < MESSAGES.len(),
                    "{}.{} dangling",
                    m.name,
                    f.json
                );
            }
            if !f.inline() {
                assert!(
                    names.insert(f.json),
                    "{}: duplicate JSON name {}",
                    m.name,
                    f.json
                );
            }
        }
        assert!(!m.name.is_empty(), "message {i} has no name");
    }
    for (av, kind, idx) in KINDS.iter() {
        assert!(usize::from(*idx) < MESSAGES.len(), "{av} {kind}");
    }
}

#[test]
fn served_kinds() {
    for (av, kind) in [
        ("v1", "Pod"),
        ("v1", "PodList"),
        ("v1", "Namespace"),
        ("v1", "Binding"),
        ("v1", "ComponentStatus"),
        ("events.k8s.io/v1", "Event"),
        ("apps/v1", "StatefulSetList"),
        ("batch/v1", "CronJob"),
        ("autoscaling/v1", "Scale"),
        ("policy/v1", "Eviction"),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
        ("v1", "Status"),
        ("v1", "DeleteOptions"),
        ("apps/v1", "DeleteOptions"),
        ("v1", "WatchEvent"),
    ] {
        assert!(supports(av, kind), "{av} {kind}");
    }
    assert!(!supports("apps/v1", "Pod"));
    assert!(!supports("v1", "Deployment"));
    assert!(!supports("v1", "NoSuchKind"));
}

#[test]
fn json_names_of_tricky_fields() {
    let field_names = |name: &str| -> Vec<&str> {
        let m = MESSAGES.iter().find(|m| m.name == name).expect(name);
        m.fields.iter().map(|f| f.json).collect()
    };
    let pod_status = field_names("core.v1.PodStatus");
    for n in [
        "podIP",
        "podIPs",
        "hostIP",
        "hostIPs",
        "qosClass",
        "nominatedNodeName",
    ] {
        assert!(pod_status.contains(&n), "PodStatus.{n}");
    }
    let svc = field_names("core.v1.ServiceSpec");
    for n in [
        "clusterIP",
        "clusterIPs",
        "externalIPs",
        "loadBalancerIP",
        "ipFamilies",
    ] {
        assert!(svc.contains(&n), "ServiceSpec.{n}");
    }
    let node = field_names("core.v1.NodeSpec");
    for n in ["podCIDR", "podCIDRs", "providerID"] {
        assert!(node.contains(&n), "NodeSpec.{n}");
    }
    assert_eq!(field_names("core.v1.DaemonEndpoint"), ["Port"]);
    assert!(field_names("core.v1.NodeSystemInfo").contains(&"machineID"));
    assert!(field_names("core.v1.ContainerStatus").contains(&"imageID"));
    assert!(field_names("core.v1.AwsElasticBlockStoreVolumeSource").contains(&"volumeID"));
}

// ---------------------------------------------------------------------------------------------
// Bodies captured from kubectl v1.32.4

#[test]
fn kubectl_create_bodies_decode_like_dry_run_json() {
    let cases: [(&[u8], &str); 5] = [
        (
            include_bytes!("testdata/kubectl_create_namespace.pb"),
            include_str!("testdata/kubectl_create_namespace.json"),
        ),
        (
            include_bytes!("testdata/kubectl_create_configmap.pb"),
            include_str!("testdata/kubectl_create_configmap.json"),
        ),
        (
            include_bytes!("testdata/kubectl_create_secret.pb"),
            include_str!("testdata/kubectl_create_secret.json"),
        ),
        (
            include_bytes!("testdata/kubectl_create_service.pb"),
            include_str!("testdata/kubectl_create_service.json"),
        ),
        (
            include_bytes!("testdata/kubectl_create_deployment.pb"),
            include_str!("testdata/kubectl_create_deployment.json"),
        ),
    ];
    for (body, json_text) in cases {
        let expected: Value = serde_json::from_str(json_text).unwrap();
        let decoded = decode(body).unwrap();
        assert_eq!(decoded, expected);
        // What we encode decodes to the same JSON again, except that a JSON null is written
        // as an absent field (creationTimestamp: a zero *Time must not become non-nil).
        assert_eq!(
            decode(&encode(&decoded).unwrap()).unwrap(),
            without_nulls(expected)
        );
    }
}

fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[test]
fn kubectl_deployment_keeps_explicit_zero_replicas() {
    let body = include_bytes!("testdata/kubectl_create_deployment.pb");
    let decoded = decode(body).unwrap();
    assert_eq!(decoded["spec"]["replicas"], json!(0));
    // Non-pointer Go fields written as zeros on the wire stay out of the JSON.
    assert!(decoded["spec"].get("minReadySeconds").is_none());
    assert!(decoded["metadata"].get("generation").is_none());
    assert!(decoded["spec"]["template"]["spec"]["containers"][0]
        .get("imagePullPolicy")
        .is_none());
}

#[test]
fn kubectl_auth_and_drain_bodies() {
    let ssar = decode(include_bytes!("testdata/kubectl_auth_can_i.pb")).unwrap();
    assert_eq!(
        ssar,
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {
                "namespace": "default", "verb": "create", "resource": "pods"}},
            "status": {"allowed": false}
        })
    );
    let ssrr = decode(include_bytes!("testdata/kubectl_auth_can_i_list.pb")).unwrap();
    assert_eq!(
        ssrr,
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"namespace": "default"},
            "status": {"incomplete": false}
        })
    );
    let delete = decode(include_bytes!("testdata/kubectl_drain_delete_options.pb")).unwrap();
    assert_eq!(
        delete,
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
    );
}

// ---------------------------------------------------------------------------------------------
// Oracle round trips against k8s-pb

#[test]
fn namespace() {
    let ns = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            name: s("team-a"),
            labels: [("env".to_owned(), "prod".to_owned())].into(),
            creation_timestamp: time(1_700_000_000),
            ..Default::default()
        }),
        spec: Some(core::NamespaceSpec {
            finalizers: vec!["kubernetes".into()],
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Active"),
            conditions: vec![],
        }),
    };
    check_both_ways(
        "v1",
        "Namespace",
        &ns,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "team-a",
                "labels": {"env": "prod"},
                "creationTimestamp": "2023-11-14T22:13:20Z"
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        }),
    );
}

#[test]
fn config_map_with_binary_data() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("settings"),
            namespace: s("default"),
            ..Default::default()
        }),
        data: [
            ("a".to_owned(), "1".to_owned()),
            ("empty".to_owned(), String::new()),
        ]
        .into(),
        binary_data: [("blob".to_owned(), vec![0u8, 1, 2, 255])].into(),
        immutable: Some(false),
    };
    check_both_ways(
        "v1",
        "ConfigMap",
        &cm,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default"},
            "data": {"a": "1", "empty": ""},
            "binaryData": {"blob": "AAEC/w=="},
            "immutable": false
        }),
    );
}

#[test]
fn secret_bytes_are_base64() {
    let secret = core::Secret {
        metadata: name_meta("creds"),
        data: [
            ("password".to_owned(), b"s3cr\x00t".to_vec()),
            ("empty".to_owned(), vec![]),
        ]
        .into(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    check_both_ways(
        "v1",
        "Secret",
        &secret,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"password": "czNjcgB0", "empty": ""},
            "type": "Opaque"
        }),
    );
}

#[test]
fn service_ports_and_cluster_ips() {
    let svc = core::Service {
        metadata: name_meta("web"),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort {
                    name: s("http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: int_or_string_int(8080),
                    ..Default::default()
                },
                core::ServicePort {
                    name: s("admin"),
                    protocol: s("TCP"),
                    port: Some(81),
                    target_port: int_or_string_str("admin-port"),
                    ..Default::default()
                },
            ],
            selector: [("app".to_owned(), "web".to_owned())].into(),
            cluster_ip: s("10.96.0.10"),
            cluster_ips: vec!["10.96.0.10".into(), "fd00::a".into()],
            r#type: s("ClusterIP"),
            external_ips: vec!["192.0.2.7".into()],
            ip_families: vec!["IPv4".into(), "IPv6".into()],
            ip_family_policy: s("PreferDualStack"),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    check_both_ways(
        "v1",
        "Service",
        &svc,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "admin", "protocol": "TCP", "port": 81, "targetPort": "admin-port"}
                ],
                "selector": {"app": "web"},
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10", "fd00::a"],
                "type": "ClusterIP",
                "externalIPs": ["192.0.2.7"],
                "ipFamilies": ["IPv4", "IPv6"],
                "ipFamilyPolicy": "PreferDualStack"
            },
            "status": {"loadBalancer": {}}
        }),
    );
}

#[test]
fn zero_int_or_string_is_kept() {
    // Go's IntOrString is a struct, so its JSON is emitted even when it is the integer 0.
    let svc = core::Service {
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                port: Some(80),
                target_port: int_or_string_int(0),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    check_both_ways(
        "v1",
        "Service",
        &svc,
        json!({"apiVersion": "v1", "kind": "Service",
            "spec": {"ports": [{"port": 80, "targetPort": 0}]}}),
    );
}

#[test]
fn pod_with_resources_times_and_status() {
    let resources = |cpu: &str, mem: &str| {
        [
            ("cpu".to_owned(), quantity(cpu)),
            ("memory".to_owned(), quantity(mem)),
        ]
        .into()
    };
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s("web-0"),
            namespace: s("default"),
            uid: s("0b8a9c1e-0000-4000-8000-000000000001"),
            resource_version: s("17"),
            creation_timestamp: time(1_700_000_000),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl-run"),
                operation: s("Update"),
                api_version: s("v1"),
                time: time(1_700_000_000),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:spec":{"f:containers":{}}}"#.to_vec()),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("nginx"),
                image: s("nginx:1.27"),
                ports: vec![core::ContainerPort {
                    name: s("http"),
                    container_port: Some(80),
                    protocol: s("TCP"),
                    ..Default::default()
                }],
                env: vec![
                    core::EnvVar {
                        name: s("MODE"),
                        value: s("prod"),
                        value_from: None,
                    },
                    core::EnvVar {
                        name: s("POD_IP"),
                        value: None,
                        value_from: Some(core::EnvVarSource {
                            field_ref: Some(core::ObjectFieldSelector {
                                api_version: s("v1"),
                                field_path: s("status.podIP"),
                            }),
                            ..Default::default()
                        }),
                    },
                ],
                resources: Some(core::ResourceRequirements {
                    limits: resources("500m", "128Mi"),
                    requests: resources("100m", "64Mi"),
                    claims: vec![],
                }),
                readiness_probe: Some(core::Probe {
                    handler: Some(core::ProbeHandler {
                        http_get: Some(core::HttpGetAction {
                            path: s("/healthz"),
                            port: int_or_string_str("http"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    period_seconds: Some(5),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            termination_grace_period_seconds: Some(0),
            node_name: s("node-1"),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            host_ip: s("192.0.2.10"),
            host_ips: vec![core::HostIp {
                ip: s("192.0.2.10"),
            }],
            pod_ip: s("10.244.0.5"),
            pod_ips: vec![core::PodIp {
                ip: s("10.244.0.5"),
            }],
            start_time: time(1_700_000_100),
            container_statuses: vec![core::ContainerStatus {
                name: s("nginx"),
                state: Some(core::ContainerState {
                    running: Some(core::ContainerStateRunning {
                        started_at: time(1_700_000_101),
                    }),
                    ..Default::default()
                }),
                ready: Some(true),
                restart_count: Some(0),
                image: s("nginx:1.27"),
                image_id: s(""),
                ..Default::default()
            }],
            qos_class: s("Burstable"),
            ..Default::default()
        }),
    };
    check_both_ways(
        "v1",
        "Pod",
        &pod,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-0",
                "namespace": "default",
                "uid": "0b8a9c1e-0000-4000-8000-000000000001",
                "resourceVersion": "17",
                "creationTimestamp": "2023-11-14T22:13:20Z",
                "managedFields": [{
                    "manager": "kubectl-run",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2023-11-14T22:13:20Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:containers": {}}}
                }]
            },
            "spec": {
                "containers": [{
                    "name": "nginx",
                    "image": "nginx:1.27",
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                    "env": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {
                            "apiVersion": "v1", "fieldPath": "status.podIP"}}}
                    ],
                    "resources": {
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                        "requests": {"cpu": "100m", "memory": "64Mi"}
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http"},
                        "periodSeconds": 5
                    }
                }],
                "terminationGracePeriodSeconds": 0,
                "nodeName": "node-1"
            },
            "status": {
                "phase": "Running",
                "hostIP": "192.0.2.10",
                "hostIPs": [{"ip": "192.0.2.10"}],
                "podIP": "10.244.0.5",
                "podIPs": [{"ip": "10.244.0.5"}],
                "startTime": "2023-11-14T22:15:00Z",
                "containerStatuses": [{
                    "name": "nginx",
                    "state": {"running": {"startedAt": "2023-11-14T22:15:01Z"}},
                    "ready": true,
                    "restartCount": 0,
                    "image": "nginx:1.27",
                    "imageID": ""
                }],
                "qosClass": "Burstable"
            }
        }),
    );
}

#[test]
fn deployment_with_zero_replicas() {
    let labels: std::collections::BTreeMap<String, String> =
        [("app".to_owned(), "web".to_owned())].into();
    let deploy = apps::Deployment {
        metadata: name_meta("web"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: labels.clone(),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels,
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("web"),
                        image: s("nginx"),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: int_or_string_str("25%"),
                    max_surge: int_or_string_int(1),
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    check_both_ways(
        "apps/v1",
        "Deployment",
        &deploy,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}
                }
            }
        }),
    );
}

#[test]
fn endpoint_slice_keeps_defaulted_empty_port_names() {
    let slice = discovery::EndpointSlice {
        metadata: Some(meta::ObjectMeta {
            name: s("web-abc"),
            ..Default::default()
        }),
        address_type: s("IPv4"),
        endpoints: vec![discovery::Endpoint {
            addresses: vec!["10.0.0.1".into()],
            conditions: Some(discovery::EndpointConditions {
                ready: Some(true),
                serving: Some(false),
                terminating: None,
            }),
            node_name: s("n1"),
            ..Default::default()
        }],
        ports: vec![discovery::EndpointPort {
            name: s(""),
            protocol: s("TCP"),
            port: Some(80),
            app_protocol: None,
        }],
    };
    check_both_ways(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        &slice,
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-abc"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"],
                           "conditions": {"ready": true, "serving": false},
                           "nodeName": "n1"}],
            "ports": [{"name": "", "protocol": "TCP", "port": 80}]
        }),
    );
}

#[test]
fn controller_revision_carries_raw_data() {
    let revision = apps::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            name: s("agent-1"),
            ..Default::default()
        }),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{}}}"#.to_vec()),
        }),
        revision: Some(2),
    };
    check_both_ways(
        "apps/v1",
        "ControllerRevision",
        &revision,
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {"name": "agent-1"},
            "data": {"spec": {"template": {}}},
            "revision": 2
        }),
    );
}

#[test]
fn eviction_with_delete_options() {
    let eviction = policy::Eviction {
        metadata: Some(meta::ObjectMeta {
            name: s("web-0"),
            namespace: s("default"),
            ..Default::default()
        }),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(meta::Preconditions {
                uid: s("u-1"),
                resource_version: None,
            }),
            propagation_policy: s("Foreground"),
            dry_run: vec!["All".into()],
            ..Default::default()
        }),
    };
    check_both_ways(
        "policy/v1",
        "Eviction",
        &eviction,
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "web-0", "namespace": "default"},
            "deleteOptions": {
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "u-1"},
                "propagationPolicy": "Foreground",
                "dryRun": ["All"]
            }
        }),
    );
}

#[test]
fn self_subject_access_review() {
    let review = authz::SelfSubjectAccessReview {
        metadata: Some(meta::ObjectMeta::default()),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("default"),
                verb: s("create"),
                group: s("apps"),
                resource: s("deployments"),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(true),
            reason: s("RBAC: allowed by ClusterRoleBinding \"admin\""),
            ..Default::default()
        }),
    };
    check_both_ways(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &review,
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {
                "namespace": "default", "verb": "create", "group": "apps",
                "resource": "deployments"}},
            "status": {
                "allowed": true,
                "reason": "RBAC: allowed by ClusterRoleBinding \"admin\""
            }
        }),
    );
}

#[test]
fn status() {
    let status = meta::Status {
        metadata: Some(meta::ListMeta::default()),
        status: s("Failure"),
        message: s("pods \"x\" not found"),
        reason: s("NotFound"),
        details: Some(meta::StatusDetails {
            name: s("x"),
            kind: s("pods"),
            causes: vec![meta::StatusCause {
                reason: s("FieldValueInvalid"),
                message: s("bad"),
                field: s("spec.x"),
            }],
            ..Default::default()
        }),
        code: Some(404),
    };
    check_both_ways(
        "v1",
        "Status",
        &status,
        json!({
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": "pods \"x\" not found",
            "reason": "NotFound",
            "details": {
                "name": "x",
                "kind": "pods",
                "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "spec.x"}]
            },
            "code": 404
        }),
    );
}

#[test]
fn config_map_list() {
    let item = |name: &str, v: &str| core::ConfigMap {
        metadata: name_meta(name),
        data: [("k".to_owned(), v.to_owned())].into(),
        ..Default::default()
    };
    let list = core::ConfigMapList {
        metadata: Some(meta::ListMeta {
            resource_version: s("42"),
            r#continue: s("next-page"),
            remaining_item_count: Some(3),
            ..Default::default()
        }),
        items: vec![item("a", "1"), item("b", "2")],
    };
    check_both_ways(
        "v1",
        "ConfigMapList",
        &list,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "42", "continue": "next-page", "remainingItemCount": 3},
            "items": [
                {"metadata": {"name": "a"}, "data": {"k": "1"}},
                {"metadata": {"name": "b"}, "data": {"k": "2"}}
            ]
        }),
    );
}

#[test]
fn core_event_micro_time() {
    let event = core::Event {
        metadata: name_meta("web.1"),
        involved_object: Some(core::ObjectReference {
            kind: s("Pod"),
            name: s("web"),
            field_path: s("spec.containers{web}"),
            ..Default::default()
        }),
        reason: s("Pulled"),
        count: Some(3),
        first_timestamp: time(1_700_000_000),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(123_456_000),
        }),
        series: Some(core::EventSeries {
            count: Some(2),
            last_observed_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_001),
                nanos: Some(0),
            }),
        }),
        ..Default::default()
    };
    check_both_ways(
        "v1",
        "Event",
        &event,
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web.1"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
            "reason": "Pulled",
            "count": 3,
            "firstTimestamp": "2023-11-14T22:13:20Z",
            "eventTime": "2023-11-14T22:13:20.123456Z",
            "series": {"count": 2, "lastObservedTime": "2023-11-14T22:13:21.000000Z"}
        }),
    );
}

#[test]
fn node_daemon_endpoint_port_and_cidrs() {
    let node = core::Node {
        metadata: name_meta("node-1"),
        spec: Some(core::NodeSpec {
            pod_cidr: s("10.244.0.0/24"),
            pod_cid_rs: vec!["10.244.0.0/24".into()],
            provider_id: s("kind://node-1"),
            unschedulable: Some(true),
            ..Default::default()
        }),
        status: Some(core::NodeStatus {
            daemon_endpoints: Some(core::NodeDaemonEndpoints {
                kubelet_endpoint: Some(core::DaemonEndpoint { port: Some(10250) }),
            }),
            capacity: [("pods".to_owned(), quantity("110"))].into(),
            ..Default::default()
        }),
    };
    check_both_ways(
        "v1",
        "Node",
        &node,
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1"},
            "spec": {
                "podCIDR": "10.244.0.0/24",
                "podCIDRs": ["10.244.0.0/24"],
                "providerID": "kind://node-1",
                "unschedulable": true
            },
            "status": {
                "capacity": {"pods": "110"},
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
            }
        }),
    );
}

#[test]
fn volumes_are_inline_in_json() {
    let pod = core::Pod {
        metadata: name_meta("p"),
        spec: Some(core::PodSpec {
            volumes: vec![core::Volume {
                name: s("cfg"),
                volume_source: Some(core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: s("settings"),
                        }),
                        default_mode: Some(0o644),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }),
        status: None,
    };
    check_both_ways(
        "v1",
        "Pod",
        &pod,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"volumes": [{
                "name": "cfg",
                "configMap": {"name": "settings", "defaultMode": 420}
            }]}
        }),
    );
}

#[test]
fn time_drops_nanos_and_zero_time_is_null() {
    let ns = |t: Option<meta::Time>| core::Namespace {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: t,
            deletion_timestamp: Some(meta::Time {
                seconds: Some(super::special::GO_ZERO_TIME_SECONDS),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let body = envelope(
        "v1",
        "Namespace",
        ns(Some(meta::Time {
            seconds: Some(0),
            nanos: Some(999),
        }))
        .encode_to_vec(),
    );
    let decoded = decode(&body).unwrap();
    assert_eq!(
        decoded["metadata"]["creationTimestamp"],
        json!("1970-01-01T00:00:00Z")
    );
    assert_eq!(decoded["metadata"]["deletionTimestamp"], Value::Null);

    // An empty Time message is Go's zero time.
    let body = envelope(
        "v1",
        "Namespace",
        ns(Some(meta::Time::default())).encode_to_vec(),
    );
    assert_eq!(
        decode(&body).unwrap()["metadata"]["creationTimestamp"],
        Value::Null
    );
}

#[test]
fn duration_and_string_list_messages() {
    let index = |name: &str| -> u16 {
        let i = MESSAGES.iter().position(|m| m.name == name).expect(name);
        u16::try_from(i).unwrap()
    };
    let d = meta::Duration {
        duration: Some(3_723_500_000_000),
    };
    let v = decode::message(&d.encode_to_vec(), index("meta.v1.Duration"), 0).unwrap();
    assert_eq!(v, json!("1h2m3.5s"));
    let mut out = Vec::new();
    encode::message(&v, index("meta.v1.Duration"), 0, &mut out).unwrap();
    assert_eq!(meta::Duration::decode(out.as_slice()).unwrap(), d);

    let verbs = meta::Verbs {
        items: vec!["get".into(), "list".into()],
    };
    let v = decode::message(&verbs.encode_to_vec(), index("meta.v1.Verbs"), 0).unwrap();
    assert_eq!(v, json!(["get", "list"]));
    let mut out = Vec::new();
    encode::message(&v, index("meta.v1.Verbs"), 0, &mut out).unwrap();
    assert_eq!(meta::Verbs::decode(out.as_slice()).unwrap(), verbs);
}

#[test]
fn packed_repeated_ints_are_accepted() {
    // Kubernetes writes repeated int64 unpacked, but a proto3-minded client may pack them.
    let sc = core::PodSecurityContext {
        supplemental_groups: vec![1000, 2000],
        ..Default::default()
    };
    let unpacked = sc.encode_to_vec();
    // Field 4, length-delimited, two one-byte... varints of 1000 and 2000 take two bytes each.
    let mut packed = vec![(4 << 3) | 2, 4];
    packed.extend([0xe8, 0x07, 0xd0, 0x0f]);
    let index = MESSAGES
        .iter()
        .position(|m| m.name == "core.v1.PodSecurityContext")
        .unwrap() as u16;
    for bytes in [unpacked, packed] {
        let v = decode::message(&bytes, index, 0).unwrap();
        assert_eq!(v, json!({"supplementalGroups": [1000, 2000]}));
    }
}

#[test]
fn unknown_fields_are_skipped() {
    let mut raw = core::ConfigMap {
        metadata: name_meta("x"),
        ..Default::default()
    }
    .encode_to_vec();
    // Fields 99 (varint), 100 (fixed64), 101 (bytes), 102 (fixed32).
    raw.extend([0x98, 0x06, 0x2a]);
    raw.extend([0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
    raw.extend([0xaa, 0x06, 2, b'h', b'i']);
    raw.extend([0xb5, 0x06, 1, 2, 3, 4]);
    let decoded = decode(&envelope("v1", "ConfigMap", raw)).unwrap();
    assert_eq!(
        decoded,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    );
}

// ---------------------------------------------------------------------------------------------
// Watch framing

#[test]
fn watch_event_frame() {
    let obj = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "resourceVersion": "7"},
        "data": {"k": "v"}
    });
    let frame = encode_watch_event("ADDED", &obj).unwrap();
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4);

    // The frame body is a bare WatchEvent; its object holds a full envelope.
    let event = meta::WatchEvent::decode(&frame[4..]).unwrap();
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let raw = event.object.and_then(|o: RawExtension| o.raw).unwrap();
    let cm = core::ConfigMap::decode(open_envelope(&raw, "v1", "ConfigMap").as_slice()).unwrap();
    assert_eq!(cm.metadata.unwrap().resource_version.as_deref(), Some("7"));
    assert_eq!(cm.data.get("k").map(String::as_str), Some("v"));

    assert_eq!(
        decode_watch_event(&frame).unwrap(),
        ("ADDED".to_owned(), obj)
    );
    assert!(matches!(
        decode_watch_event(&frame[..frame.len() - 1]),
        Err(ProtobufError::BadFrame { .. })
    ));
}

#[test]
fn watch_error_event_carries_status() {
    let status = json!({
        "apiVersion": "v1", "kind": "Status", "status": "Failure",
        "reason": "Expired", "code": 410, "message": "too old resource version"
    });
    let frame = encode_watch_event("ERROR", &status).unwrap();
    assert_eq!(
        decode_watch_event(&frame).unwrap(),
        ("ERROR".to_owned(), status)
    );
}

// ---------------------------------------------------------------------------------------------
// Errors and robustness

#[test]
fn error_messages() {
    assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(ProtobufError::BadMagic));
    assert_eq!(decode(b"k8s\0\x0a\x05"), Err(ProtobufError::Truncated));
    let err = decode(&envelope("v1", "Frobnicator", vec![])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no protobuf schema for kind \"Frobnicator\" in apiVersion \"v1\""
    );
    // ConfigMap field 1 (metadata) sent as a varint.
    let err = decode(&envelope("v1", "ConfigMap", vec![0x08, 0x01])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong wire type for field core.v1.ConfigMap.metadata: got varint"
    );
    assert_eq!(
        encode(&json!({"kind": "Pod"})),
        Err(ProtobufError::MissingTypeMeta)
    );
    let err = encode(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "spec": {"replicas": "three"}}))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for apps.v1.DeploymentSpec.replicas: expected an integer, got a string"
    );
    let err =
        encode(&json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "%%%"}})).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("invalid value for core.v1.Secret.data: invalid base64"));
    let err = encode(&json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"creationTimestamp": "yesterday"}}))
    .unwrap_err();
    assert!(err.to_string().contains("RFC 3339"));
    let err = encode(&json!({"apiVersion": "v1", "kind": "Service",
        "spec": {"ports": [{"port": 3_000_000_000u64}]}}))
    .unwrap_err();
    assert!(err.to_string().contains("out of range for int32"));
}

#[test]
fn nesting_is_bounded() {
    // WatchEvent → RawExtension → envelope → WatchEvent → ... far deeper than MAX_DEPTH.
    let mut body = envelope("v1", "ConfigMap", vec![]);
    for _ in 0..200 {
        let event = meta::WatchEvent {
            r#type: s("ADDED"),
            object: Some(RawExtension { raw: Some(body) }),
        };
        body = envelope("v1", "WatchEvent", event.encode_to_vec());
    }
    assert_eq!(decode(&body), Err(ProtobufError::TooDeep(MAX_DEPTH)));
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn sample_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![
        include_bytes!("testdata/kubectl_create_namespace.pb").to_vec(),
        include_bytes!("testdata/kubectl_create_configmap.pb").to_vec(),
        include_bytes!("testdata/kubectl_create_secret.pb").to_vec(),
        include_bytes!("testdata/kubectl_create_service.pb").to_vec(),
        include_bytes!("testdata/kubectl_create_deployment.pb").to_vec(),
        include_bytes!("testdata/kubectl_auth_can_i.pb").to_vec(),
    ];
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"fieldsV1": {"f:x": {}}}]},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}},
            "ports": [{"containerPort": 80}], "livenessProbe": {"tcpSocket": {"port": 80}}}]}});
    bodies.push(encode(&pod).unwrap());
    let frame = encode_watch_event("MODIFIED", &pod).unwrap();
    bodies.push(envelope("v1", "WatchEvent", frame[4..].to_vec()));
    bodies
}

#[test]
fn truncated_and_mutated_input_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for body in sample_bodies() {
        assert!(decode(&body).is_ok());
        for cut in 0..body.len() {
            let _ = decode(&body[..cut]);
        }
        for pos in 0..body.len() {
            for _ in 0..8 {
                let mut mutated = body.clone();
                mutated[pos] = rng.next() as u8;
                if let Ok(v) = decode(&mutated) {
                    // Whatever decodes must also encode without panicking.
                    let _ = encode(&v);
                }
            }
        }
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let kinds: Vec<(&str, &str)> = KINDS.iter().map(|(av, k, _)| (*av, *k)).collect();
    for i in 0..20_000 {
        let len = (rng.next() % 200) as usize;
        let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode(&noise);
        // Random bytes inside a valid envelope reach the message decoders.
        let (av, kind) = kinds[i % kinds.len()];
        let av = if av.is_empty() { "v1" } else { av };
        let _ = decode(&envelope(av, kind, noise));
    }
}
