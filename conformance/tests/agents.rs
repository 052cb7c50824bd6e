//! Black-box tests of `rkube agent`: nodes that join a control-plane-only
//! server with its token, each running its own pods, and agents with a
//! bad token refused. Needs root.

use std::time::Duration;

use conformance::{Agent, Cluster};
use runtime::testing::{images, registry::TestRegistry};
use serde_json::{json, Value};

fn pod_on(node: &str, name: &str, image: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": image,
                "command": ["sh", "-c", "echo running on $NODE; exec sleep 3600"],
                "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]},
    })
    .to_string()
}

#[test]
fn two_agents_join_one_server_each_running_its_own_pods() {
    let cluster = Cluster::start();
    let pid = std::process::id() % 10_000;
    let subnets = [
        format!("10.251.{}.0/24", pid % 250),
        format!("10.252.{}.0/24", pid % 250),
    ];
    let names = [format!("agent-a-{pid}"), format!("agent-b-{pid}")];
    let agents: Vec<Agent> = (0..2)
        .map(|i| Agent::join(&cluster, &names[i], &format!("rka{pid}x{i}"), &subnets[i]))
        .collect();
    let registry = TestRegistry::start();
    let host = registry.host_port().to_string();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(images::push(&host, &images::busybox(), "busybox", "1.0"));
    let image = format!("{host}/busybox:1.0");
    for (i, agent) in agents.iter().enumerate() {
        cluster.ok_stdin(
            &["create", "-f", "-"],
            &pod_on(&agent.name, &format!("p{i}"), &image),
        );
    }
    for (i, agent) in agents.iter().enumerate() {
        let pod = format!("p{i}");
        let mut last = Value::Null;
        cluster.wait_for(
            &format!("{pod} to run on {}", agent.name),
            Duration::from_secs(60),
            || {
                last =
                    serde_json::from_str(&cluster.ok(&["get", "pod", &pod, "-o", "json"])).unwrap();
                last["status"]["phase"] == "Running"
            },
        );
        // Each node gives its pods addresses from its own CIDR.
        let ip = last["status"]["podIP"].as_str().unwrap();
        let prefix = subnets[i].rsplit_once('.').unwrap().0;
        assert!(ip.starts_with(prefix), "{ip} not in {}", subnets[i]);
        // The API server reaches each agent's kubelet for logs and exec.
        cluster.wait_for("the pod's first log line", Duration::from_secs(20), || {
            cluster.ok(&["logs", &pod]) == format!("running on {}\n", agent.name)
        });
        assert_eq!(
            cluster.ok(&["exec", &pod, "--", "sh", "-c", "echo $NODE"]),
            format!("{}\n", agent.name)
        );
    }
    // Both nodes are listed, with their kubelet's version and a lease each.
    let nodes = cluster.ok(&["get", "nodes", "-o", "name"]);
    for n in &names {
        assert!(nodes.contains(&format!("node/{n}")), "{nodes}");
        cluster.ok(&["get", "lease", "-n", "kube-node-lease", n]);
    }
}

#[test]
fn an_agent_with_a_wrong_token_is_refused_and_joins_nothing() {
    let cluster = Cluster::start();
    let token =
        std::fs::read_to_string(cluster.data_dir.path().join("data").join("token")).unwrap();
    let token = token.trim();
    let (hash_part, _) = token.rsplit_once('.').unwrap();
    // The right CA, a wrong secret: the server says no.
    let wrong_secret = format!("{hash_part}.{}", "0".repeat(64));
    let mut agent = Agent::spawn(
        &cluster,
        "intruder",
        "rkbad0",
        "10.253.0.0/24",
        &wrong_secret,
    );
    assert!(!agent.wait_exit(Duration::from_secs(30)).success());
    assert!(
        agent.log().contains("the join token is not valid"),
        "{}",
        agent.log()
    );
    // A token for another CA: the agent does not trust this server.
    let other_ca = format!("rk1.{}.{}", "ab".repeat(32), "1".repeat(64));
    let mut agent = Agent::spawn(&cluster, "intruder", "rkbad1", "10.253.1.0/24", &other_ca);
    assert!(!agent.wait_exit(Duration::from_secs(30)).success());
    assert!(
        agent.log().contains("does not match the token"),
        "{}",
        agent.log()
    );
    // Not even a token.
    let mut agent = Agent::spawn(&cluster, "intruder", "rkbad2", "10.253.2.0/24", "letmein");
    assert!(!agent.wait_exit(Duration::from_secs(30)).success());
    assert!(
        agent.log().contains("rk1.<ca-hash>.<secret>"),
        "{}",
        agent.log()
    );
    assert!(cluster
        .fails(&["get", "node", "intruder"])
        .contains("NotFound"));
}
