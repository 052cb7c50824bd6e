//! The kubelet's read-only views: `/pods` (the pods this kubelet runs, as
//! it last saw them) and `/stats/summary` (the Summary API metrics tools
//! read: node, pod and container CPU and memory from the runtime's
//! cgroups, filesystem figures from the node). Reads only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use runtime::types::{ContainerFilter, ContainerState, ResourceStats, SandboxFilter};
use serde_json::{json, Value};

use crate::pod::command::{
    LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID,
};
use crate::KubeletConfig;

/// Previous cumulative CPU samples, so a reading can report a rate
/// (`usageNanoCores`) as well as the total.
#[derive(Default)]
pub struct UsageRates {
    last: Mutex<HashMap<String, (u128, u64)>>,
}

impl UsageRates {
    /// Nanocores used since the previous sample of `key`; `None` on the
    /// first one.
    pub fn nano_cores(&self, key: &str, at_nanos: u128, usage_nanos: u64) -> Option<u64> {
        let mut last = self.last.lock().expect("not poisoned");
        let previous = last.insert(key.to_string(), (at_nanos, usage_nanos));
        let (t0, u0) = previous?;
        let elapsed = at_nanos.checked_sub(t0).filter(|d| *d > 0)?;
        let used = u128::from(usage_nanos.checked_sub(u0)?);
        Some((used * 1_000_000_000 / elapsed) as u64)
    }

    /// Drops samples of things not seen in this round.
    fn retain(&self, seen: &std::collections::HashSet<String>) {
        self.last
            .lock()
            .expect("not poisoned")
            .retain(|k, _| seen.contains(k));
    }
}

fn rfc3339(t: SystemTime) -> String {
    let t: time::OffsetDateTime = t.into();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn nanos_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn cpu_and_memory(rates: &UsageRates, key: &str, s: &ResourceStats, now: &str) -> (Value, Value) {
    let mut cpu = json!({"time": now, "usageCoreNanoSeconds": s.cpu_usage_nanos});
    if let Some(n) = rates.nano_cores(key, s.timestamp_nanos, s.cpu_usage_nanos) {
        cpu["usageNanoCores"] = json!(n);
    }
    let memory = json!({
        "time": now,
        "usageBytes": s.memory_usage_bytes,
        "workingSetBytes": s.memory_working_set_bytes,
        "rssBytes": s.memory_rss_bytes,
    });
    (cpu, memory)
}

/// `/pods`: a `PodList` of what the pod manager holds.
pub fn pod_list(cfg: &KubeletConfig) -> Value {
    let pods = cfg.pods.read().expect("not poisoned");
    json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": pods.values().collect::<Vec<_>>(),
    })
}

/// Cumulative CPU nanoseconds of the whole machine, from /proc/stat
/// (everything but idle and iowait).
pub fn parse_proc_stat_cpu(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    // USER_HZ is 100 on every Linux the kubelet supports.
    Some((total - idle) * 10_000_000)
}

fn node_stats(cfg: &KubeletConfig, rates: &UsageRates, now: &str) -> Value {
    let mem = crate::node_info::meminfo();
    let total = mem.get("MemTotal").copied().unwrap_or(0);
    let available = mem.get("MemAvailable").copied().unwrap_or(0);
    let free = mem.get("MemFree").copied().unwrap_or(0);
    let stats = ResourceStats {
        timestamp_nanos: nanos_now(),
        cpu_usage_nanos: parse_proc_stat_cpu(
            &std::fs::read_to_string("/proc/stat").unwrap_or_default(),
        )
        .unwrap_or(0),
        memory_working_set_bytes: total.saturating_sub(available),
        memory_usage_bytes: total.saturating_sub(free),
        memory_rss_bytes: total.saturating_sub(available),
    };
    let (cpu, mut memory) = cpu_and_memory(rates, "node", &stats, now);
    memory["availableBytes"] = json!(available);
    let (capacity, fs_available) = crate::node_info::filesystem_bytes(&cfg.root_dir);
    let fs = json!({
        "time": now,
        "capacityBytes": capacity,
        "availableBytes": fs_available,
        "usedBytes": capacity.saturating_sub(fs_available),
    });
    json!({
        "nodeName": cfg.node_name,
        "startTime": now,
        "cpu": cpu,
        "memory": memory,
        "fs": fs,
        "runtime": {"imageFs": fs},
    })
}

/// `/stats/summary`.
pub async fn summary(cfg: &KubeletConfig, rates: &UsageRates) -> Value {
    let now = rfc3339(SystemTime::now());
    let node = node_stats(cfg, rates, &now);
    let mut seen = std::collections::HashSet::from(["node".to_string()]);
    let sandboxes = cfg
        .runtime
        .list_pod_sandboxes(&SandboxFilter::default())
        .await
        .unwrap_or_default();
    let containers = cfg
        .runtime
        .list_containers(&ContainerFilter::default())
        .await
        .unwrap_or_default();
    let mut pods = Vec::new();
    for sb in sandboxes {
        let label = |k: &str| sb.labels.get(k).cloned().unwrap_or_default();
        let mut entry = json!({
            "podRef": {
                "name": label(LABEL_POD_NAME),
                "namespace": label(LABEL_POD_NAMESPACE),
                "uid": label(LABEL_POD_UID),
            },
            "startTime": rfc3339(sb.created_at),
            "containers": [],
        });
        if let Ok(s) = cfg.runtime.pod_sandbox_stats(&sb.id).await {
            let (cpu, memory) = cpu_and_memory(rates, &sb.id, &s, &now);
            entry["cpu"] = cpu;
            entry["memory"] = memory;
            seen.insert(sb.id.clone());
        }
        let mut list = Vec::new();
        for c in containers
            .iter()
            .filter(|c| c.sandbox_id == sb.id && c.state == ContainerState::Running)
        {
            let mut ce = json!({
                "name": c.labels.get(LABEL_CONTAINER_NAME).cloned().unwrap_or_else(|| c.name.clone()),
                "startTime": rfc3339(c.started_at.unwrap_or(c.created_at)),
            });
            if let Ok(s) = cfg.runtime.container_stats(&c.id).await {
                let (cpu, memory) = cpu_and_memory(rates, &c.id, &s, &now);
                ce["cpu"] = cpu;
                ce["memory"] = memory;
                seen.insert(c.id.clone());
            }
            list.push(ce);
        }
        entry["containers"] = Value::Array(list);
        pods.push(entry);
    }
    rates.retain(&seen);
    json!({"node": node, "pods": pods})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rates_need_two_samples() {
        let r = UsageRates::default();
        assert_eq!(r.nano_cores("c", 1_000_000_000, 0), None);
        // Half a core over one second.
        assert_eq!(
            r.nano_cores("c", 2_000_000_000, 500_000_000),
            Some(500_000_000)
        );
        // A counter that went back (a restarted container) gives no rate.
        assert_eq!(r.nano_cores("c", 3_000_000_000, 1), None);
    }

    #[test]
    fn machine_cpu_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 0 50 1000 20 0 0 0 0 0\ncpu0 100 0 50 1000 20 0 0 0 0 0\n";
        assert_eq!(parse_proc_stat_cpu(stat), Some(150 * 10_000_000));
        assert_eq!(parse_proc_stat_cpu("intr 1"), None);
    }
}
