//! The runtime start-latency benchmark behind `rkube bench runtime`: for
//! each of N pods, one after another, run a sandbox, create and start one
//! busybox container, and time each step until the container's process
//! runs; then remove everything. Generic over [`Runtime`], so every
//! backend is measured the same way.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::api::Runtime;
use crate::error::Result;
use crate::types::*;

/// Per-pod timings, in the order the pods were started.
#[derive(Debug, Default, Clone)]
pub struct StartLatencies {
    pub sandbox: Vec<Duration>,
    pub container: Vec<Duration>,
    pub total: Vec<Duration>,
    pub remove: Vec<Duration>,
}

/// The `q` quantile (0..=1) of `samples`, nearest rank.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

impl StartLatencies {
    /// One line per step: p50, p99, max.
    pub fn report(&self) -> String {
        [
            ("sandbox", &self.sandbox),
            ("container", &self.container),
            ("total", &self.total),
            ("remove", &self.remove),
        ]
        .iter()
        .map(|(name, s)| {
            format!(
                "{name:<10} p50 {:>9}  p99 {:>9}  max {:>9}  (n={})\n",
                ms(quantile(s, 0.5)),
                ms(quantile(s, 0.99)),
                ms(quantile(s, 1.0)),
                s.len()
            )
        })
        .collect()
    }
}

/// Starts `pods` pods one after another with `image` (present already)
/// running `sleep`, then removes them. `network` false runs host-network
/// sandboxes (no CNI), to separate the network's share.
pub async fn start_latency(
    rt: &dyn Runtime,
    image: &str,
    pods: usize,
    network: bool,
    log_root: &Path,
) -> Result<StartLatencies> {
    let mut out = StartLatencies::default();
    let mut started = Vec::new();
    for i in 0..pods {
        let name = format!("bench-{i}");
        let uid = format!("bench-uid-{i}");
        let sandbox = SandboxConfig {
            metadata: PodMetadata {
                name: name.clone(),
                namespace: "bench".into(),
                uid: uid.clone(),
                attempt: 0,
            },
            hostname: name.clone(),
            log_directory: log_root.join(format!("bench_{name}_{uid}")),
            namespaces: NamespaceOptions {
                network: if network {
                    NamespaceMode::Pod
                } else {
                    NamespaceMode::Node
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let container = ContainerConfig {
            name: "sleep".into(),
            image: image.into(),
            command: vec!["sleep".into(), "3600".into()],
            log_path: "sleep/0.log".into(),
            ..Default::default()
        };
        let t0 = Instant::now();
        let sandbox_id = rt.run_pod_sandbox(&sandbox).await?;
        let t1 = Instant::now();
        let id = rt
            .create_container(&sandbox_id, &container, &sandbox)
            .await?;
        rt.start_container(&id).await?;
        let t2 = Instant::now();
        out.sandbox.push(t1 - t0);
        out.container.push(t2 - t1);
        out.total.push(t2 - t0);
        started.push(sandbox_id);
    }
    for sandbox_id in started {
        let t = Instant::now();
        rt.stop_pod_sandbox(&sandbox_id).await?;
        rt.remove_pod_sandbox(&sandbox_id).await?;
        out.remove.push(t.elapsed());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&s, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&s, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&s, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[tokio::test]
    async fn measures_every_pod_on_the_fake_runtime() {
        let rt = crate::fake::FakeRuntime::new();
        rt.pull_image("busybox", None).await.unwrap();
        let dir = std::env::temp_dir();
        let l = start_latency(&rt, "busybox", 5, true, &dir).await.unwrap();
        assert_eq!((l.total.len(), l.remove.len()), (5, 5));
        assert!(rt
            .list_pod_sandboxes(&Default::default())
            .await
            .unwrap()
            .is_empty());
    }
}
