//! Black-box tests of the `kubectl rolling-update` plugin (the seeds'
//! demo): the stock kubectl finds `kubectl-rolling_update` on PATH and
//! replaces a ReplicationController's pods one at a time on a simulated
//! node, never exceeding one extra pod; an interrupted update rolls back.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conformance::{Agent, Cluster};
use serde_json::{json, Value};

fn rc(name: &str, replicas: i64, image: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"app": name},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]}}},
    })
    .to_string()
}

fn live_pods(c: &Cluster, app: &str) -> Vec<Value> {
    let out = c.ok(&["get", "pods", "-l", &format!("app={app}"), "-o", "json"]);
    serde_json::from_str::<Value>(&out).unwrap()["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

fn ready_rc(c: &Cluster, name: &str, n: i64) -> bool {
    let out = c.kubectl(&["get", "rc", name, "-o", "json"]);
    serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["status"]["readyReplicas"] == n)
}

#[test]
fn kubectl_rolling_update_replaces_pods_one_at_a_time_and_takes_the_old_name() {
    let c = &Cluster::start();
    let _node = Agent::join_simulated(c, &format!("sim-ru-{}", std::process::id()));
    c.ok_stdin(&["create", "-f", "-"], &rc("frontend", 3, "busybox:1"));
    c.wait_for("3 ready replicas", Duration::from_secs(60), || {
        ready_rc(c, "frontend", 3)
    });
    // Watch the pod count while the update runs.
    let done = Arc::new(AtomicBool::new(false));
    let most = {
        let (done, kubeconfig) = (done.clone(), c.kubeconfig.clone());
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(Ordering::SeqCst) {
                let out = Command::new(conformance::kubectl_path())
                    .args(["get", "pods", "-l", "app=frontend", "-o", "json"])
                    .env("KUBECONFIG", &kubeconfig)
                    .output()
                    .unwrap();
                if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
                    let live = v["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                        .count();
                    most = most.max(live);
                }
            }
            most
        })
    };
    let out = c.ok(&[
        "rolling-update",
        "frontend",
        "--image=busybox:2",
        "--update-period=1s",
        "--poll-interval=200ms",
    ]);
    done.store(true, Ordering::SeqCst);
    let most = most.join().unwrap();
    assert!(most <= 4, "never more than replicas + 1 pods, saw {most}");
    for line in [
        "Created frontend-",
        "Scaling up frontend-",
        "(keep 3 pods available, don't exceed 4 pods)",
        "Update succeeded. Deleting old controller: frontend",
        "Renaming frontend-",
        "replicationcontroller/frontend rolling updated",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    c.wait_for(
        "3 ready replicas on the new image",
        Duration::from_secs(60),
        || {
            ready_rc(c, "frontend", 3)
                && live_pods(c, "frontend")
                    .iter()
                    .all(|p| p["spec"]["containers"][0]["image"] == "busybox:2")
        },
    );
    let rcs = c.ok(&["get", "rc", "-o", "name"]);
    assert_eq!(rcs.trim(), "replicationcontroller/frontend");
    // Bad input: the same image again, a controller that does not exist.
    let err = c.fails(&["rolling-update", "frontend", "--image=busybox:2"]);
    assert!(err.contains("must be distinct"), "{err}");
    let err = c.fails(&["rolling-update", "nope", "--image=x"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn kubectl_rolling_update_rollback_undoes_an_interrupted_update() {
    let c = &Cluster::start();
    let _node = Agent::join_simulated(c, &format!("sim-rb-{}", std::process::id()));
    c.ok_stdin(&["create", "-f", "-"], &rc("foo", 2, "busybox:1"));
    c.wait_for("2 ready replicas", Duration::from_secs(60), || {
        ready_rc(c, "foo", 2)
    });
    let mut update = Command::new(conformance::kubectl_path())
        .args([
            "rolling-update",
            "foo",
            "foo-v2",
            "--image=busybox:2",
            "--update-period=1m",
        ])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("PATH", conformance::path_with_plugins())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt the update once it has moved one pod.
    let mut lines = BufReader::new(update.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("Scaling foo down to") {
            break;
        }
    }
    update.kill().unwrap();
    update.wait().unwrap();
    let out = c.ok(&[
        "rolling-update",
        "foo",
        "foo-v2",
        "--rollback",
        "--update-period=1s",
        "--poll-interval=200ms",
    ]);
    assert!(out.contains("Setting \"foo\" replicas to 2"), "{out}");
    assert!(
        out.contains("replicationcontroller/foo rolled back"),
        "{out}"
    );
    c.wait_for(
        "foo back at 2 ready on the old image",
        Duration::from_secs(60),
        || {
            ready_rc(c, "foo", 2)
                && c.kubectl(&["get", "rc", "foo-v2"]).status.code() == Some(1)
                && live_pods(c, "foo")
                    .iter()
                    .all(|p| p["spec"]["containers"][0]["image"] == "busybox:1")
        },
    );
}
