//! Defaulting tests: whole defaulted objects compared against what a v1.33 cluster
//! stores for the same input.

use serde_json::{json, Value};

use super::apply_defaults;

fn defaulted(kind: &str, mut obj: Value) -> Value {
    apply_defaults(kind, &mut obj);
    obj
}

#[test]
fn pod_defaults() {
    let pod = defaulted(
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {
            "containers": [{
                "name": "web", "image": "nginx",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
                "readinessProbe": {"httpGet": {"port": 80}}
            }, {"name": "side", "image": "busybox:1.36"}],
            "volumes": [{"name": "scratch"}, {"name": "s", "secret": {"secretName": "x"}}, {"name": "h", "hostPath": {"path": "/tmp"}}]
        }}),
    );
    let expected = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "containers": [{
            "name": "web", "image": "nginx", "imagePullPolicy": "Always",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}},
            "readinessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
        }, {
            "name": "side", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent", "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
        }],
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}},
            {"name": "h", "hostPath": {"path": "/tmp", "type": ""}}
        ],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "securityContext": {},
        "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
        "enableServiceLinks": true, "priority": 0, "preemptionPolicy": "PreemptLowerPriority"
    }});
    assert_eq!(pod, expected);
    // Defaulting is idempotent.
    assert_eq!(defaulted("Pod", pod.clone()), pod);
}

#[test]
fn pod_with_priority_class_gets_no_priority() {
    let pod = defaulted(
        "Pod",
        json!({"spec": {"priorityClassName": "high", "containers": []}}),
    );
    assert!(pod["spec"].get("priority").is_none());
}

#[test]
fn service_defaults() {
    let svc = defaulted(
        "Service",
        json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}}),
    );
    assert_eq!(
        svc,
        json!({"metadata": {"name": "s"}, "spec": {
            "selector": {"app": "a"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "type": "ClusterIP", "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack"
        }})
    );
    let lb = defaulted(
        "Service",
        json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.5", "sessionAffinity": "ClientIP", "ports": [{"port": 443, "targetPort": "https"}]}}),
    );
    assert_eq!(
        lb,
        json!({"spec": {
            "type": "LoadBalancer", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "ports": [{"port": 443, "targetPort": "https", "protocol": "TCP"}],
            "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": true, "ipFamilyPolicy": "SingleStack"
        }})
    );
    let ext = defaulted(
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "x.com"}}),
    );
    assert_eq!(
        ext,
        json!({"spec": {"type": "ExternalName", "externalName": "x.com", "sessionAffinity": "None"}})
    );
}

#[test]
fn replication_controller_defaults() {
    let rc = defaulted(
        "ReplicationController",
        json!({"metadata": {"name": "r"}, "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}),
    );
    assert_eq!(
        rc,
        json!({"metadata": {"name": "r", "labels": {"app": "a"}}, "spec": {
            "replicas": 1, "selector": {"app": "a"},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {
                "containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "IfNotPresent", "resources": {},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "securityContext": {},
                "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"
            }}
        }})
    );
}

#[test]
fn namespace_secret_limitrange_defaults() {
    let ns = defaulted("Namespace", json!({"metadata": {"name": "team"}}));
    assert_eq!(
        ns,
        json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    );
    assert_eq!(defaulted("Secret", json!({}))["type"], "Opaque");
    let lr = defaulted(
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}}),
    );
    assert_eq!(
        lr["spec"]["limits"][0],
        json!({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}, "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}})
    );
}

#[test]
fn workload_defaults() {
    let d = defaulted(
        "Deployment",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    );
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert!(d["spec"]["template"]["spec"]
        .get("enableServiceLinks")
        .is_none());
    let ss = defaulted("StatefulSet", json!({"spec": {}}));
    assert_eq!(
        ss["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        ss["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    let rs = defaulted("ReplicaSet", json!({"spec": {}}));
    assert_eq!(rs["spec"]["replicas"], 1);
    let kept = defaulted("ReplicaSet", json!({"spec": {"replicas": 0}}));
    assert_eq!(kept["spec"]["replicas"], 0);
    let ds = defaulted("DaemonSet", json!({"spec": {}}));
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    let job = defaulted(
        "Job",
        json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}),
    );
    assert_eq!(job["metadata"]["labels"], json!({"a": "b"}));
    for (k, v) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        assert_eq!(job["spec"][k], v, "{k}");
    }
    let cj = defaulted("CronJob", json!({"spec": {"schedule": "* * * * *"}}));
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
}

#[test]
fn endpoint_slice_ports_get_a_name_and_protocol() {
    let eps = defaulted(
        "EndpointSlice",
        json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
    );
    assert_eq!(
        eps["ports"],
        json!([{"name": "", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}])
    );
}
