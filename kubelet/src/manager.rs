//! Watches the pods bound to this node (one field-selected watch) and keeps
//! one worker task per pod, feeding it each new version of its pod. Also
//! removes sandboxes the runtime has for pods the API no longer has (after
//! a restart, pods deleted while the kubelet was down).

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::pod::command::LABEL_POD_UID;
use crate::worker::{PodWorker, Update};
use crate::KubeletConfig;

/// The pods bound to this node as the manager last saw them, by uid.
pub type KnownPods = std::sync::Arc<std::sync::RwLock<BTreeMap<String, Pod>>>;

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

struct Workers {
    cfg: KubeletConfig,
    senders: HashMap<String, mpsc::UnboundedSender<Update>>,
}

impl Workers {
    fn send(&mut self, pod: Pod) {
        let key = uid(&pod);
        self.cfg
            .pods
            .write()
            .expect("not poisoned")
            .insert(key.clone(), pod.clone());
        if let Some(tx) = self.senders.get(&key) {
            if tx.send(Update::Pod(Box::new(pod.clone()))).is_ok() {
                return;
            }
        }
        // A new pod, or its worker finished (it had been deleted and a pod
        // with the same uid cannot come back): start a worker.
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = PodWorker::new(self.cfg.clone(), pod);
        tokio::spawn(worker.run(rx));
        self.senders.insert(key, tx);
    }

    fn gone(&mut self, key: &str) {
        self.cfg.pods.write().expect("not poisoned").remove(key);
        if let Some(tx) = self.senders.remove(key) {
            let _ = tx.send(Update::Deleted);
        }
    }
}

/// Removes runtime sandboxes whose pod is not in `live`.
async fn remove_orphans(cfg: &KubeletConfig, live: &HashSet<String>) {
    let Ok(sandboxes) = cfg.runtime.list_pod_sandboxes(&Default::default()).await else {
        return;
    };
    for sb in sandboxes {
        let Some(pod_uid) = sb.labels.get(LABEL_POD_UID) else {
            continue;
        };
        if !live.contains(pod_uid) {
            tracing::info!(sandbox = %sb.id, pod_uid = %pod_uid, "removing the sandbox of a pod that is gone");
            let _ = cfg.runtime.stop_pod_sandbox(&sb.id).await;
            if let Err(e) = cfg.runtime.remove_pod_sandbox(&sb.id).await {
                tracing::warn!("removing orphaned sandbox {}: {e}", sb.id);
            }
        }
    }
}

pub async fn run(cfg: KubeletConfig) {
    let pods: Api<Pod> = Api::all(cfg.client.clone());
    let selector = format!("spec.nodeName={}", cfg.node_name);
    let mut stream = watcher(pods, watcher::Config::default().fields(&selector)).boxed();
    let mut workers = Workers {
        cfg: cfg.clone(),
        senders: HashMap::new(),
    };
    // Pods seen in the current (re)list, to find the ones that went away
    // while the watch was broken.
    let mut relist: Option<BTreeMap<String, Pod>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => relist = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(pod)) => {
                if let Some(r) = relist.as_mut() {
                    r.insert(uid(&pod), pod);
                }
            }
            Ok(watcher::Event::InitDone) => {
                let seen = relist.take().unwrap_or_default();
                let live: HashSet<String> = seen.keys().cloned().collect();
                let stale: Vec<String> = workers
                    .senders
                    .keys()
                    .filter(|k| !live.contains(*k))
                    .cloned()
                    .collect();
                for k in stale {
                    workers.gone(&k);
                }
                for (_, pod) in seen {
                    workers.send(pod);
                }
                remove_orphans(&cfg, &live).await;
            }
            Ok(watcher::Event::Apply(pod)) => workers.send(pod),
            Ok(watcher::Event::Delete(pod)) => workers.gone(&uid(&pod)),
            Err(e) => {
                tracing::warn!("watching this node's pods: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
