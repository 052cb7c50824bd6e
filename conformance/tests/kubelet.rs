//! Black-box tests of the kubelet: `rkube server` with its node agent on
//! youki, pods bound to the node by `spec.nodeName` (the scheduler comes
//! later), images pulled from a registry on loopback. Named after the
//! upstream conformance tests they mirror. Needs root.

use std::time::Duration;

use runtime::testing::{images, registry::TestRegistry};
use serde_json::Value;

mod node;

use node::{phase, Node};

#[test]
fn node_registers_ready_and_renews_its_lease() {
    let node = Node::start();
    let c = &node.cluster;
    c.wait_for("the node to be Ready", Duration::from_secs(30), || {
        c.ok(&["get", "nodes"])
            .lines()
            .any(|l| l.starts_with(&node.name) && l.contains(" Ready "))
    });
    let n: Value = serde_json::from_str(&c.ok(&["get", "node", &node.name, "-o", "json"])).unwrap();
    assert_eq!(n["metadata"]["labels"]["kubernetes.io/os"], "linux");
    assert!(n["status"]["capacity"]["cpu"].as_str().is_some());
    assert!(n["status"]["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .unwrap()
        .starts_with("youki://"));
    let lease = c.ok(&[
        "get",
        "lease",
        "-n",
        "kube-node-lease",
        &node.name,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(lease, node.name);
}

#[test]
fn pods_should_be_submitted_and_removed() {
    let node = Node::start();
    let c = &node.cluster;
    c.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml("sleeper", "Always", "sleep 3600"),
    );
    let pod = node.wait_pod("sleeper", "the pod to run", |p| {
        phase(p) == "Running" && p["status"]["podIP"].is_string()
    });
    let ip = pod["status"]["podIP"].as_str().unwrap();
    assert!(
        ip.starts_with(&format!("{}.", node.prefix)),
        "{ip} is from the node's pod CIDR"
    );
    assert!(
        pod["status"]["hostIP"].is_string(),
        "Pods should get a host IP"
    );
    let ready = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{pod}");
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0);
    assert!(pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .starts_with("youki://"));
    let wide = c.ok(&["get", "pod", "sleeper", "-o", "wide"]);
    assert!(wide.contains(ip) && wide.contains(&node.name), "{wide}");
    // Deletion: the kubelet stops the container and finalizes the delete.
    c.ok(&["delete", "pod", "sleeper", "--wait=true", "--timeout=60s"]);
    assert!(c.fails(&["get", "pod", "sleeper"]).contains("NotFound"));
}

#[test]
fn kubelet_when_scheduling_a_busybox_command_that_always_fails_in_a_pod_should_have_an_terminated_reason(
) {
    let node = Node::start();
    node.cluster.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml("fails", "Never", "exit 1"),
    );
    let pod = node.wait_pod("fails", "the pod to fail", |p| phase(p) == "Failed");
    let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["reason"], "Error", "{pod}");
    assert_eq!(terminated["exitCode"], 1);
    node.cluster
        .ok(&["delete", "pod", "fails", "--wait=true", "--timeout=60s"]);
}

#[test]
fn container_runtime_blackbox_test_when_starting_a_container_that_exits_should_run_with_the_expected_status(
) {
    let node = Node::start();
    let c = &node.cluster;
    c.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml("always", "Always", "exit 1"),
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml("onfailure", "OnFailure", "exit 0"),
    );
    let pod = node.wait_pod("always", "a restart and the crash-loop back-off", |p| {
        let s = &p["status"]["containerStatuses"][0];
        s["restartCount"].as_i64().unwrap_or(0) >= 1
            && s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    let last = &pod["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 1, "{pod}");
    assert_eq!(phase(&pod), "Running");
    let done = node.wait_pod("onfailure", "the pod to succeed", |p| {
        phase(p) == "Succeeded"
    });
    assert_eq!(
        done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    c.ok(&[
        "delete",
        "pod",
        "always",
        "onfailure",
        "--wait=true",
        "--timeout=60s",
    ]);
}

#[test]
fn downward_api_should_provide_pod_name_namespace_and_ip_address_as_env_vars() {
    let node = Node::start();
    let c = &node.cluster;
    let out = tempfile::tempdir().unwrap();
    c.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=greeting=hello",
    ]);
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "downward"},
        "spec": {
            "nodeName": node.name,
            "restartPolicy": "Never",
            "volumes": [{"name": "out", "hostPath": {"path": out.path()}}],
            "containers": [{
                "name": "main",
                "image": node.image(),
                "command": ["sh", "-c", "echo \"$POD_NAME $POD_NAMESPACE $POD_IP $GREETING\" > /out/env"],
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
                ],
                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
            }],
        },
    });
    c.ok_stdin(&["create", "-f", "-"], &pod.to_string());
    let done = node.wait_pod("downward", "the pod to succeed", |p| {
        phase(p) == "Succeeded"
    });
    let ip = done["status"]["podIP"].as_str().unwrap();
    let env = std::fs::read_to_string(out.path().join("env")).unwrap();
    assert_eq!(env, format!("downward default {ip} hello\n"));
    c.ok(&["delete", "pod", "downward", "--wait=true", "--timeout=60s"]);
}

#[test]
fn missing_config_map_is_a_create_container_config_error() {
    let node = Node::start();
    let env = serde_json::json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]);
    let pod = node.pod_with("needs-cm", serde_json::json!({ "env": env }));
    node.cluster.ok_stdin(&["create", "-f", "-"], &pod);
    let p = node.wait_pod("needs-cm", "CreateContainerConfigError", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            == "CreateContainerConfigError"
    });
    let message = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap();
    assert_eq!(message, "configmap \"absent\" not found");
    assert_eq!(phase(&p), "Pending");
    node.cluster
        .ok(&["delete", "pod", "needs-cm", "--wait=true", "--timeout=60s"]);
}

#[test]
fn kubelet_when_scheduling_a_busybox_command_in_a_pod_should_print_the_output_to_logs() {
    let node = Node::start();
    let c = &node.cluster;
    c.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml(
            "logger",
            "Never",
            // stdout and stderr are separate pipes: the pauses keep their
            // lines in a known order in the log.
            "echo 'Hello World'; sleep 0.3; echo oops >&2; sleep 0.3; echo last",
        ),
    );
    node.wait_pod("logger", "the pod to succeed", |p| phase(p) == "Succeeded");
    let logs = c.ok(&["logs", "logger"]);
    assert_eq!(logs, "Hello World\noops\nlast\n");
    assert_eq!(c.ok(&["logs", "logger", "--tail=1"]), "last\n");
    assert_eq!(c.ok(&["logs", "logger", "--limit-bytes=5"]), "Hello");
    let stamped = c.ok(&["logs", "logger", "--timestamps"]);
    let first = stamped.lines().next().unwrap();
    let (ts, rest) = first.split_once(' ').unwrap();
    assert!(ts.ends_with('Z') && ts.contains('T'), "{first}");
    assert_eq!(rest, "Hello World");
    let wrong = c.fails(&["logs", "logger", "-c", "nope"]);
    assert!(
        wrong.contains("container nope is not valid for pod logger"),
        "{wrong}"
    );
    c.ok(&["delete", "pod", "logger", "--wait=true", "--timeout=60s"]);
}

#[test]
fn kubectl_logs_follows_and_shows_the_previous_container() {
    let node = Node::start();
    let c = &node.cluster;
    // Each run prints its own start, then fails: the kubelet restarts it.
    c.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml(
            "crasher",
            "Always",
            "echo run-$(date +%s%N); sleep 1; exit 3",
        ),
    );
    node.wait_pod("crasher", "a restart", |p| {
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    });
    let previous = c.ok(&["logs", "crasher", "--previous"]);
    assert!(previous.starts_with("run-"), "{previous}");
    c.ok(&["delete", "pod", "crasher", "--wait=true", "--timeout=60s"]);
    // -f streams lines as they are written and ends with the container.
    c.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml(
            "counter",
            "Never",
            "for i in 1 2 3; do echo $i; sleep 0.3; done",
        ),
    );
    node.wait_pod("counter", "the pod to run", |p| {
        phase(p) == "Running" || phase(p) == "Succeeded"
    });
    let followed = c.ok(&["logs", "-f", "counter"]);
    assert_eq!(followed, "1\n2\n3\n");
    c.ok(&["delete", "pod", "counter", "--wait=true", "--timeout=60s"]);
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[test]
fn probing_container_should_be_restarted_with_a_exec_cat_tmp_health_liveness_probe() {
    let node = Node::start();
    let container = serde_json::json!({
        "command": ["sh", "-c", "echo ok > /tmp/health; sleep 3; rm -f /tmp/health; sleep 600"],
        "livenessProbe": {
            "exec": {"command": ["cat", "/tmp/health"]},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    });
    let pod = node.pod_with("liveness-exec", container);
    node.cluster.ok_stdin(&["create", "-f", "-"], &pod);
    node.wait_pod("liveness-exec", "a restart by the liveness probe", |p| {
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    });
    node.cluster.ok(&[
        "delete",
        "pod",
        "liveness-exec",
        "--wait=true",
        "--timeout=60s",
    ]);
}

#[test]
fn probing_container_with_readiness_probe_should_not_be_ready_before_initial_delay_and_never_restart(
) {
    let node = Node::start();
    let container = serde_json::json!({
        "command": ["sh", "-c", "mkdir -p /www && echo up > /www/healthz && exec httpd -f -p 8080 -h /www"],
        "ports": [{"name": "web", "containerPort": 8080}],
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "web"},
            "initialDelaySeconds": 4,
            "periodSeconds": 1,
        },
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    });
    let pod = node.pod_with("readiness", container);
    node.cluster.ok_stdin(&["create", "-f", "-"], &pod);
    let running = node.wait_pod("readiness", "the container to run", |p| {
        p["status"]["containerStatuses"][0]["state"]["running"].is_object()
    });
    let started = running["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        .as_str()
        .unwrap()
        .to_string();
    let now = time::OffsetDateTime::now_utc();
    let started_at =
        time::OffsetDateTime::parse(&started, &time::format_description::well_known::Rfc3339)
            .unwrap();
    if (now - started_at).whole_seconds() < 3 {
        assert!(
            !ready(&running),
            "not ready before the initial delay: {running}"
        );
    }
    let became = node.wait_pod("readiness", "the pod to become ready", ready);
    let transition = became["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()["lastTransitionTime"]
        .as_str()
        .unwrap()
        .to_string();
    let ready_at =
        time::OffsetDateTime::parse(&transition, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(
        (ready_at - started_at).whole_seconds() >= 4,
        "ready at {transition}, started {started}"
    );
    assert_eq!(became["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(became["status"]["containerStatuses"][0]["ready"], true);
    node.cluster
        .ok(&["delete", "pod", "readiness", "--wait=true", "--timeout=60s"]);
}

#[test]
fn killing_and_restarting_the_kubelet_restarts_no_container() {
    let mut node = Node::start();
    node.cluster.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml("survivor", "Always", "sleep 3600"),
    );
    let before = node.wait_pod("survivor", "the pod to run", |p| phase(p) == "Running");
    let id = before["status"]["containerStatuses"][0]["containerID"].clone();
    let started = before["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
    // rkube (API server and kubelet in one process) dies without cleanup;
    // its containers live on in their shims.
    node.cluster.kill9_and_restart();
    // A new pod running proves the new kubelet has synced.
    node.cluster.ok_stdin(
        &["create", "-f", "-"],
        &node.pod_yaml("after", "Always", "sleep 3600"),
    );
    node.wait_pod("after", "a pod started after the restart to run", |p| {
        phase(p) == "Running"
    });
    let survivor = node.pod("survivor");
    let status = &survivor["status"]["containerStatuses"][0];
    assert_eq!(status["containerID"], id, "the same container: {survivor}");
    assert_eq!(status["restartCount"], 0);
    assert_eq!(
        status["state"]["running"]["startedAt"], started,
        "not restarted: {survivor}"
    );
    node.cluster.ok(&[
        "delete",
        "pod",
        "survivor",
        "after",
        "--wait=true",
        "--timeout=60s",
    ]);
}

#[test]
fn container_lifecycle_hook_should_execute_poststart_and_prestop_exec_hooks_properly() {
    let node = Node::start();
    let out = tempfile::tempdir().unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hooked"},
        "spec": {
            "nodeName": node.name,
            "terminationGracePeriodSeconds": 5,
            "volumes": [{"name": "out", "hostPath": {"path": out.path()}}],
            "containers": [{
                "name": "main",
                "image": node.image(),
                "command": ["sleep", "3600"],
                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
                "lifecycle": {
                    "postStart": {"exec": {"command": ["sh", "-c", "echo started > /out/poststart"]}},
                    "preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /out/prestop"]}},
                },
            }],
        },
    });
    node.cluster
        .ok_stdin(&["create", "-f", "-"], &pod.to_string());
    node.wait_pod("hooked", "the pod to run", |p| phase(p) == "Running");
    node.cluster
        .wait_for("the postStart hook", Duration::from_secs(30), || {
            std::fs::read_to_string(out.path().join("poststart")).is_ok_and(|s| s == "started\n")
        });
    assert!(
        !out.path().join("prestop").exists(),
        "preStop runs only on termination"
    );
    node.cluster
        .ok(&["delete", "pod", "hooked", "--wait=true", "--timeout=60s"]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("prestop")).unwrap(),
        "stopping\n"
    );
}

#[test]
fn emptydir_volumes_volume_on_tmpfs_should_have_the_correct_mode() {
    let node = Node::start();
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tmpfs"},
        "spec": {
            "nodeName": node.name,
            "restartPolicy": "Never",
            "volumes": [{"name": "cache", "emptyDir": {"medium": "Memory"}}],
            "containers": [{
                "name": "main",
                "image": node.image(),
                "command": ["sh", "-c", "grep ' /cache ' /proc/mounts | cut -d' ' -f3; stat -c %a /cache"],
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
            }],
        },
    });
    node.cluster
        .ok_stdin(&["create", "-f", "-"], &pod.to_string());
    node.wait_pod("tmpfs", "the pod to succeed", |p| phase(p) == "Succeeded");
    assert_eq!(node.cluster.ok(&["logs", "tmpfs"]), "tmpfs\n777\n");
    node.cluster
        .ok(&["delete", "pod", "tmpfs", "--wait=true", "--timeout=60s"]);
    let data = node.cluster.data_dir.path().display().to_string();
    // A finished pod is deleted at once; the kubelet then cleans up.
    node.cluster
        .wait_for("the tmpfs to be unmounted", Duration::from_secs(30), || {
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            !mounts
                .lines()
                .any(|l| l.contains(&data) && l.contains("tmpfs"))
        });
}

#[test]
fn image_pull_secrets_authenticate_to_a_private_registry() {
    let node = Node::start();
    let c = &node.cluster;
    let private = TestRegistry::start_with_basic_auth("puller", "s3cret");
    let host = private.host_port().to_string();
    let auth = runtime::types::RegistryAuth::Basic {
        username: "puller".into(),
        password: "s3cret".into(),
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(images::push_with_auth(
        &host,
        &images::busybox(),
        "private/busybox",
        "1.0",
        Some(&auth),
    ));
    let pod = |name: &str, secret: bool| {
        let mut p = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": node.name,
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "main",
                    "image": format!("{host}/private/busybox:1.0"),
                    "command": ["sleep", "3600"],
                }],
            },
        });
        if secret {
            p["spec"]["imagePullSecrets"] = serde_json::json!([{"name": "regcred"}]);
        }
        p.to_string()
    };
    // Without credentials the pull is refused.
    c.ok_stdin(&["create", "-f", "-"], &pod("anonymous", false));
    let refused = node.wait_pod("anonymous", "the pull to fail", |p| {
        let reason = &p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"];
        reason == "ErrImagePull" || reason == "ImagePullBackOff"
    });
    assert_eq!(phase(&refused), "Pending");
    let server = format!("--docker-server={host}");
    c.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &server,
        "--docker-username=puller",
        "--docker-password=s3cret",
    ]);
    c.ok_stdin(&["create", "-f", "-"], &pod("authenticated", true));
    node.wait_pod("authenticated", "the pod to run", |p| phase(p) == "Running");
    c.ok(&[
        "delete",
        "pod",
        "anonymous",
        "authenticated",
        "--wait=true",
        "--timeout=60s",
    ]);
}

#[test]
fn image_tars_in_the_data_dir_are_imported_at_start() {
    let mut node = Node::start();
    let images_dir = node.cluster.data_dir.path().join("data").join("images");
    let out = std::process::Command::new(conformance::rkube_binary())
        .args(["images", "build-test"])
        .arg(&images_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.cluster.kill9_and_restart();
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "offline"},
        "spec": {
            "nodeName": node.name,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": "busybox",
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
            }],
        },
    });
    node.cluster
        .ok_stdin(&["create", "-f", "-"], &pod.to_string());
    let running = node.wait_pod("offline", "the imported image to run", |p| {
        phase(p) == "Running"
    });
    let image = running["status"]["containerStatuses"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.contains("busybox"), "{running}");
    node.cluster
        .ok(&["delete", "pod", "offline", "--wait=true", "--timeout=60s"]);
}

#[test]
fn configmap_updates_should_be_reflected_in_volume() {
    let node = Node::start();
    let c = &node.cluster;
    c.ok(&[
        "create",
        "configmap",
        "live",
        "--from-literal=data-1=value-1",
    ]);
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "watcher"},
        "spec": {
            "nodeName": node.name,
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "cm", "configMap": {"name": "live"}}],
            "containers": [{
                "name": "main",
                "image": node.image(),
                "command": ["sh", "-c", "while true; do cat /etc/cm/data-1; echo; sleep 0.5; done"],
                "volumeMounts": [{"name": "cm", "mountPath": "/etc/cm"}],
            }],
        },
    });
    c.ok_stdin(&["create", "-f", "-"], &pod.to_string());
    node.wait_pod("watcher", "the pod to run", |p| phase(p) == "Running");
    c.wait_for(
        "the first value in the log",
        Duration::from_secs(30),
        || c.ok(&["logs", "watcher"]).contains("value-1"),
    );
    c.ok(&[
        "patch",
        "configmap",
        "live",
        "-p",
        r#"{"data":{"data-1":"value-2"}}"#,
    ]);
    c.wait_for(
        "the updated value in the volume",
        Duration::from_secs(60),
        || c.ok(&["logs", "watcher", "--tail=1"]).contains("value-2"),
    );
    // A key removed from the ConfigMap leaves the volume; a new one appears.
    c.ok(&[
        "patch",
        "configmap",
        "live",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/data/data-1"},{"op":"add","path":"/data/data-3","value":"value-3"}]"#,
    ]);
    c.wait_for("the key set to change", Duration::from_secs(60), || {
        c.ok(&["exec", "watcher", "--", "ls", "/etc/cm"]) == "data-3\n"
    });
    c.ok(&["delete", "pod", "watcher", "--wait=true", "--timeout=60s"]);
}

#[test]
fn pods_that_do_not_fit_the_node_are_rejected() {
    let node = Node::start();
    let resources = serde_json::json!({"requests": {"cpu": "1000"}});
    let pod = node.pod_with("too-big", serde_json::json!({ "resources": resources }));
    node.cluster.ok_stdin(&["create", "-f", "-"], &pod);
    let p = node.wait_pod("too-big", "the pod to be rejected", |p| {
        phase(p) == "Failed"
    });
    assert_eq!(p["status"]["reason"], "OutOfcpu", "{p}");
    let message = p["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Pod was rejected: Node didn't have enough resource: cpu"),
        "{message}"
    );
    assert!(
        p["status"]["podIP"].is_null(),
        "a rejected pod never gets a sandbox"
    );
    node.cluster
        .ok(&["delete", "pod", "too-big", "--wait=true", "--timeout=60s"]);
}
