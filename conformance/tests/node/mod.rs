//! The node every kubelet black-box test starts: `rkube server` with its
//! node agent on youki (bridge and pod subnet of its own, so tests run in
//! parallel), and a registry on loopback holding busybox.

#![allow(dead_code)] // each test file uses part of it

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conformance::Cluster;
use runtime::testing::{images, registry::TestRegistry};
use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A cluster with a kubelet, and a registry holding busybox.
pub struct Node {
    pub cluster: Cluster,
    pub registry: TestRegistry,
    pub name: String,
    pub prefix: String,
}

impl Node {
    pub fn start() -> Node {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id() % 10_000;
        let name = format!("node-{pid}-{n}");
        let bridge = format!("rkk{pid}x{n}");
        let subnet = format!("10.{}.{}.0/24", 230 + n % 20, pid % 250);
        let cluster = Cluster::start_with_node(&name, &bridge, &subnet);
        let registry = TestRegistry::start();
        let host = registry.host_port().to_string();
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio.block_on(images::push(&host, &images::busybox(), "busybox", "1.0"));
        Node {
            cluster,
            registry,
            name,
            prefix: subnet.rsplit_once('.').unwrap().0.to_string(),
        }
    }

    pub fn image(&self) -> String {
        format!("{}/busybox:1.0", self.registry.host_port())
    }

    pub fn pod_yaml(&self, name: &str, restart: &str, command: &str) -> String {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": self.name,
                "restartPolicy": restart,
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "main",
                    "image": self.image(),
                    "command": ["sh", "-c", command],
                }],
            },
        })
        .to_string()
    }

    /// A pod on this node whose one container (`main`, busybox, `sleep
    /// 3600`) gets the fields of `container`.
    pub fn pod_with(&self, name: &str, container: Value) -> String {
        let mut main = serde_json::json!({
            "name": "main",
            "image": self.image(),
            "command": ["sleep", "3600"],
        });
        for (k, v) in container.as_object().into_iter().flatten() {
            main[k] = v.clone();
        }
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"nodeName": self.name, "terminationGracePeriodSeconds": 1, "containers": [main]},
        })
        .to_string()
    }

    pub fn pod(&self, name: &str) -> Value {
        serde_json::from_str(&self.cluster.ok(&["get", "pod", name, "-o", "json"])).unwrap()
    }

    pub fn wait_pod(&self, name: &str, what: &str, mut check: impl FnMut(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        self.cluster.wait_for(what, Duration::from_secs(60), || {
            last = self.pod(name);
            check(&last)
        });
        last
    }
}

pub fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("")
}
