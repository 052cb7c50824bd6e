//! The scheduler against rkube's real API server, in-process: Node objects
//! are created directly (no kubelet), the scheduler runs in the background
//! as it would in `rkube server`, and the tests watch what it does through
//! the API like any client.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Affinity, Container, Event, Namespace, Node, NodeCondition, NodeSpec, NodeStatus, Pod,
    PodAffinity, PodAffinityTerm, PodAntiAffinity, PodSpec, ReplicationController,
    ReplicationControllerSpec, ResourceRequirements, Taint, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use scheduler::SchedulerOptions;
use serde_json::json;
use tokio::task::JoinHandle;

const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` until it yields a value; fails the test after `DEADLINE`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An API server on a free loopback port with its own data directory.
struct Cluster {
    client: Client,
    server: JoinHandle<()>,
    scheduler: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(s) = &self.scheduler {
            s.abort();
        }
        self.server.abort();
    }
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let config = apiserver::Config {
            data_dir: dir.path().join("data"),
            // Port 0: the server writes the port it got into the kubeconfig.
            listen: "127.0.0.1:0".parse().unwrap(),
            write_kubeconfig: Some(kubeconfig.clone()),
            service_cidr: "10.96.0.0/12".into(),
            tls_san: vec![],
            advertise_address: None,
            history_window: Duration::from_secs(300),
            etcd: None,
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
        };
        let server = tokio::spawn(async move {
            if let Err(e) = apiserver::run(config, std::future::pending()).await {
                panic!("API server failed: {e}");
            }
        });
        let kubeconfig = eventually("the admin kubeconfig", || {
            let path = kubeconfig.clone();
            async move { Kubeconfig::read_from(&path).ok() }
        })
        .await;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kubeconfig");
        let client = Client::try_from(config).expect("client");
        eventually("the API server to serve the default namespace", || {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            async move { namespaces.get("default").await.ok() }
        })
        .await;
        Cluster {
            client,
            server,
            scheduler: None,
            _dir: dir,
        }
    }

    /// Starts the scheduler with short back-offs (the periodic retry stays
    /// at its 5 minutes, so a retry seen here was caused by a change).
    fn start_scheduler(&mut self) {
        let opts = SchedulerOptions {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..SchedulerOptions::default()
        };
        self.scheduler = Some(tokio::spawn(scheduler::run(self.client.clone(), opts)));
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn add_node(&self, node: Node) {
        self.nodes()
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
    }

    async fn add_pod(&self, pod: Pod) -> Pod {
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod")
    }

    /// The node `name` gets bound to.
    async fn bound_node(&self, name: &str) -> String {
        let pods = self.pods();
        eventually(&format!("pod {name} to be bound"), || {
            let pods = pods.clone();
            async move {
                let pod = pods.get(name).await.ok()?;
                pod.spec?.node_name
            }
        })
        .await
    }

    /// The pod's `PodScheduled` condition once it is False, as (reason,
    /// message).
    async fn unschedulable(&self, name: &str) -> (String, String) {
        let pods = self.pods();
        eventually(&format!("pod {name} to be marked unschedulable"), || {
            let pods = pods.clone();
            async move {
                let pod = pods.get(name).await.ok()?;
                let c = pod
                    .status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
                Some((c.reason?, c.message?))
            }
        })
        .await
    }

    /// The message of the first `reason` Event about pod `name`.
    async fn event(&self, name: &str, reason: &str) -> (String, String) {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        eventually(&format!("a {reason} event for {name}"), || {
            let events = events.clone();
            async move {
                let list = events.list(&ListParams::default()).await.ok()?;
                list.items.into_iter().find_map(|e| {
                    (e.involved_object.name.as_deref() == Some(name)
                        && e.reason.as_deref() == Some(reason))
                    .then(|| (e.type_.unwrap_or_default(), e.message.unwrap_or_default()))
                })
            }
        })
        .await
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect()
}

/// A Ready node with `cpu` cores, 8 GiB and room for 110 pods.
fn node(name: &str, cpu: &str) -> Node {
    let resources = quantities(&[("cpu", cpu), ("memory", "8Gi"), ("pods", "110")]);
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn labelled(mut n: Node, key: &str, value: &str) -> Node {
    n.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    n
}

/// A pod requesting `cpu`.
fn pod(name: &str, cpu: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.invalid/app:1".into()),
                resources: Some(ResourceRequirements {
                    requests: Some(quantities(&[("cpu", cpu), ("memory", "64Mi")])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn with_spec(mut p: Pod, change: impl FnOnce(&mut PodSpec)) -> Pod {
    change(p.spec.as_mut().unwrap());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_pods_to_nodes_that_fit() {
    let mut cluster = Cluster::start().await;
    cluster.add_node(node("small", "1")).await;
    cluster.add_node(node("big", "4")).await;
    // Pending before the scheduler starts: found anyway.
    cluster.add_pod(pod("early", "2")).await;
    let elsewhere = with_spec(pod("elsewhere", "100m"), |s| {
        s.scheduler_name = Some("other-scheduler".into())
    });
    cluster.add_pod(elsewhere).await;
    cluster.start_scheduler();
    cluster.add_pod(pod("late", "2")).await;

    assert_eq!(cluster.bound_node("early").await, "big");
    assert_eq!(cluster.bound_node("late").await, "big");
    let (type_, message) = cluster.event("late", "Scheduled").await;
    assert_eq!(type_, "Normal");
    assert_eq!(message, "Successfully assigned default/late to big");
    let late = cluster.pods().get("late").await.unwrap();
    let scheduled = late.status.unwrap().conditions.unwrap();
    assert!(
        scheduled
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True"),
        "{scheduled:?}"
    );

    // A pod for another scheduler is left alone, even with room to spare.
    cluster.add_pod(pod("after", "100m")).await;
    cluster.bound_node("after").await;
    let other = cluster.pods().get("elsewhere").await.unwrap();
    assert_eq!(other.spec.unwrap().node_name, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreads_the_replicas_of_one_owner() {
    let mut cluster = Cluster::start().await;
    cluster.add_node(node("node-a", "4")).await;
    cluster.add_node(node("node-b", "4")).await;
    cluster.start_scheduler();
    let rcs: Api<ReplicationController> = Api::namespaced(cluster.client.clone(), "default");
    let rc = rcs
        .create(
            &PostParams::default(),
            &ReplicationController {
                metadata: ObjectMeta {
                    name: Some("web".into()),
                    ..Default::default()
                },
                spec: Some(ReplicationControllerSpec {
                    replicas: Some(4),
                    selector: Some([("app".to_string(), "web".to_string())].into()),
                    template: Some(k8s_openapi::api::core::v1::PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some([("app".to_string(), "web".to_string())].into()),
                            ..Default::default()
                        }),
                        spec: pod("template", "100m").spec,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create rc");
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "ReplicationController".into(),
        name: "web".into(),
        uid: rc.uid().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    for i in 0..4 {
        let mut p = pod(&format!("web-{i}"), "100m");
        p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        p.metadata.owner_references = Some(vec![owner.clone()]);
        cluster.add_pod(p).await;
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..4 {
        *per_node
            .entry(cluster.bound_node(&format!("web-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(
        per_node,
        [("node-a".to_string(), 2), ("node-b".to_string(), 2)].into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_selector_picks_the_matching_node() {
    let mut cluster = Cluster::start().await;
    cluster
        .add_node(labelled(node("spinning", "8"), "disk", "hdd"))
        .await;
    cluster
        .add_node(labelled(node("flash", "2"), "disk", "ssd"))
        .await;
    cluster.start_scheduler();
    for i in 0..3 {
        let p = with_spec(pod(&format!("db-{i}"), "100m"), |s| {
            s.node_selector = Some([("disk".to_string(), "ssd".to_string())].into())
        });
        cluster.add_pod(p).await;
    }
    for i in 0..3 {
        assert_eq!(cluster.bound_node(&format!("db-{i}")).await, "flash");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_too_big_waits_until_a_node_has_room() {
    let mut cluster = Cluster::start().await;
    cluster.add_node(node("node-a", "1")).await;
    cluster.add_node(node("node-b", "1")).await;
    cluster.start_scheduler();
    cluster.add_pod(pod("huge", "2")).await;

    let expected = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are \
                    available: 2 No preemption victims found for incoming pod.";
    let (reason, message) = cluster.unschedulable("huge").await;
    assert_eq!(reason, "Unschedulable");
    assert_eq!(message, expected);
    let (type_, message) = cluster.event("huge", "FailedScheduling").await;
    assert_eq!(type_, "Warning");
    assert_eq!(message, expected);
    let huge = cluster.pods().get("huge").await.unwrap();
    assert_eq!(huge.spec.unwrap().node_name, None);

    // Pods bound meanwhile free nothing: no retry, so still one attempt.
    for i in 0..3 {
        cluster.add_pod(pod(&format!("small-{i}"), "100m")).await;
    }
    for i in 0..3 {
        cluster.bound_node(&format!("small-{i}")).await;
    }
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(cluster.client.clone(), "default");
    let attempts: Vec<_> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("FailedScheduling")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("huge")
        })
        .collect();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].series, None, "retried without a reason");

    cluster.add_node(node("node-c", "4")).await;
    assert_eq!(cluster.bound_node("huge").await, "node-c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_free_slot_goes_to_one_pod() {
    let mut cluster = Cluster::start().await;
    cluster.add_node(node("only", "1")).await;
    for name in ["first", "second", "third"] {
        cluster.add_pod(pod(name, "400m")).await;
    }
    // All three are pending when the scheduler starts, so they are decided
    // in one go, before any binding is seen back through the watch.
    cluster.start_scheduler();
    let (_, message) = cluster.unschedulable("third").await;
    assert!(
        message.starts_with("0/1 nodes are available: 1 Insufficient cpu."),
        "{message}"
    );
    assert_eq!(cluster.bound_node("first").await, "only");
    assert_eq!(cluster.bound_node("second").await, "only");
    let third = cluster.pods().get("third").await.unwrap();
    assert_eq!(third.spec.unwrap().node_name, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tainted_node_is_avoided_unless_tolerated() {
    let mut cluster = Cluster::start().await;
    let mut gpu = node("gpu", "8");
    gpu.spec.as_mut().unwrap().taints = Some(vec![Taint {
        key: "dedicated".into(),
        value: Some("gpu".into()),
        effect: "NoSchedule".into(),
        ..Default::default()
    }]);
    cluster.add_node(gpu).await;
    cluster.add_node(node("plain", "2")).await;
    cluster.start_scheduler();

    // The tainted node has far more room, yet plain pods go elsewhere.
    for i in 0..3 {
        cluster.add_pod(pod(&format!("plain-{i}"), "100m")).await;
    }
    for i in 0..3 {
        assert_eq!(cluster.bound_node(&format!("plain-{i}")).await, "plain");
    }
    let tolerant = with_spec(pod("tolerant", "1"), |s| {
        s.tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("gpu".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }])
    });
    cluster.add_pod(tolerant).await;
    assert_eq!(cluster.bound_node("tolerant").await, "gpu");

    cluster.add_pod(pod("greedy", "4")).await;
    let (_, message) = cluster.unschedulable("greedy").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint \
         {dedicated: gpu}. preemption: 0/2 nodes are available: 1 No preemption victims found \
         for incoming pod, 1 Preemption is not helpful for scheduling."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cordoned_node_gets_no_new_pods() {
    let mut cluster = Cluster::start().await;
    let mut cordoned = node("cordoned", "8");
    cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
    cluster.add_node(cordoned).await;
    cluster.add_node(node("open", "2")).await;
    cluster.start_scheduler();

    for i in 0..4 {
        cluster.add_pod(pod(&format!("app-{i}"), "100m")).await;
    }
    for i in 0..4 {
        assert_eq!(cluster.bound_node(&format!("app-{i}")).await, "open");
    }
    let pinned = with_spec(pod("pinned", "100m"), |s| {
        s.node_selector =
            Some([("kubernetes.io/hostname".to_string(), "cordoned".to_string())].into())
    });
    cluster.add_pod(pinned).await;
    let (_, message) = cluster.unschedulable("pinned").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 \
         node(s) were unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not \
         helpful for scheduling."
    );

    // Uncordoning is a change that lets the waiting pod in.
    cluster
        .nodes()
        .patch(
            "cordoned",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": null}})),
        )
        .await
        .expect("uncordon");
    assert_eq!(cluster.bound_node("pinned").await, "cordoned");
}

fn anti_affine(name: &str) -> Pod {
    let mut p = pod(name, "100m");
    p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    with_spec(p, |s| {
        s.affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some([("app".to_string(), "web".to_string())].into()),
                        ..Default::default()
                    }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_keeps_replicas_apart_until_a_node_joins() {
    let mut cluster = Cluster::start().await;
    cluster.add_node(node("node-a", "4")).await;
    cluster.add_node(node("node-b", "4")).await;
    cluster.start_scheduler();
    for i in 0..3 {
        cluster.add_pod(anti_affine(&format!("web-{i}"))).await;
    }
    // Decided in creation order: the first two take one node each.
    let a = cluster.bound_node("web-0").await;
    let b = cluster.bound_node("web-1").await;
    assert_ne!(a, b);
    let (_, message) = cluster.unschedulable("web-2").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. preemption: \
         0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    cluster.add_node(node("node-c", "4")).await;
    assert_eq!(cluster.bound_node("web-2").await, "node-c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_with_affinity_waits_for_its_partner_in_a_selected_namespace() {
    let mut cluster = Cluster::start().await;
    cluster.add_node(node("node-a", "4")).await;
    cluster.add_node(node("node-b", "4")).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("prod".into()),
                    labels: Some([("env".to_string(), "prod".to_string())].into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create namespace");
    cluster.start_scheduler();

    let mut web = pod("web", "100m");
    web.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let web = with_spec(web, |s| {
        s.affinity = Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some([("app".to_string(), "db".to_string())].into()),
                        ..Default::default()
                    }),
                    namespace_selector: Some(LabelSelector {
                        match_labels: Some([("env".to_string(), "prod".to_string())].into()),
                        ..Default::default()
                    }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    });
    cluster.add_pod(web).await;
    let (_, message) = cluster.unschedulable("web").await;
    assert_eq!(
        message,
        "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 \
         nodes are available: 2 Preemption is not helpful for scheduling."
    );

    // Its partner, pinned to node-b in the selected namespace: placing it
    // is a change that lets the waiting pod in, next to it.
    let mut db = with_spec(pod("db", "100m"), |s| {
        s.node_selector =
            Some([("kubernetes.io/hostname".to_string(), "node-b".to_string())].into())
    });
    db.metadata.namespace = Some("prod".into());
    db.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
    Api::<Pod>::namespaced(cluster.client.clone(), "prod")
        .create(&PostParams::default(), &db)
        .await
        .expect("create db");
    assert_eq!(cluster.bound_node("web").await, "node-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_spread_constraints_hold_per_zone() {
    let mut cluster = Cluster::start().await;
    let zone = "topology.kubernetes.io/zone";
    cluster
        .add_node(labelled(node("a-1", "4"), zone, "a"))
        .await;
    cluster
        .add_node(labelled(node("a-2", "4"), zone, "a"))
        .await;
    cluster
        .add_node(labelled(node("b-1", "1"), zone, "b"))
        .await;
    cluster.start_scheduler();
    let spread = |name: &str, cpu: &str| {
        let mut p = pod(name, cpu);
        p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        with_spec(p, |s| {
            s.topology_spread_constraints = Some(vec![TopologySpreadConstraint {
                label_selector: Some(LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                }),
                max_skew: 1,
                topology_key: zone.into(),
                when_unsatisfiable: "DoNotSchedule".into(),
                ..Default::default()
            }])
        })
    };
    // One by one, so each decision sees the one before: the zones take
    // turns.
    for (i, want) in ["a", "b", "a"].iter().enumerate() {
        let name = format!("web-{i}");
        cluster.add_pod(spread(&name, "400m")).await;
        let node = cluster.bound_node(&name).await;
        assert!(node.starts_with(want), "{name} on {node}");
    }
    // Zone b is full now, and a third pod in zone a would skew by 2.
    cluster.add_pod(spread("web-3", "800m")).await;
    let (_, message) = cluster.unschedulable("web-3").await;
    assert_eq!(
        message,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match pod topology \
         spread constraints. preemption: 0/3 nodes are available: 3 No preemption victims \
         found for incoming pod."
    );
}
