//! Defaulting of the workload kinds that embed pod templates: apps/v1 Deployment,
//! ReplicaSet, DaemonSet, StatefulSet and batch/v1 Job, CronJob.

use serde_json::{json, Map, Value};

use super::pod::{
    default_pod_template, default_pvc_spec, each_obj, ensure_obj, set_missing, set_str,
};

fn spec_of(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.as_object_mut().map(|o| ensure_obj(o, "spec"))
}

fn default_template_in(spec: &mut Map<String, Value>) {
    default_pod_template(ensure_obj(spec, "template"));
}

/// Deployment: one replica, RollingUpdate with 25%/25%, history 10, deadline 600s.
pub fn default_deployment(d: &mut Value) {
    let Some(spec) = spec_of(d) else { return };
    set_missing(spec, "replicas", Value::from(1));
    let strategy = ensure_obj(spec, "strategy");
    set_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = ensure_obj(strategy, "rollingUpdate");
        set_missing(ru, "maxUnavailable", Value::from("25%"));
        set_missing(ru, "maxSurge", Value::from("25%"));
    }
    set_missing(spec, "revisionHistoryLimit", Value::from(10));
    set_missing(spec, "progressDeadlineSeconds", Value::from(600));
    default_template_in(spec);
}

/// ReplicaSet: one replica.
pub fn default_replica_set(rs: &mut Value) {
    let Some(spec) = spec_of(rs) else { return };
    set_missing(spec, "replicas", Value::from(1));
    default_template_in(spec);
}

/// DaemonSet: RollingUpdate with maxUnavailable 1 and maxSurge 0, history 10.
pub fn default_daemon_set(ds: &mut Value) {
    let Some(spec) = spec_of(ds) else { return };
    let strategy = ensure_obj(spec, "updateStrategy");
    set_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = ensure_obj(strategy, "rollingUpdate");
        set_missing(ru, "maxUnavailable", Value::from(1));
        set_missing(ru, "maxSurge", Value::from(0));
    }
    set_missing(spec, "revisionHistoryLimit", Value::from(10));
    default_template_in(spec);
}

/// StatefulSet: OrderedReady, RollingUpdate with partition 0, Retain/Retain PVC
/// retention, one replica, history 10; claim templates get PVC defaults.
pub fn default_stateful_set(ss: &mut Value) {
    let Some(spec) = spec_of(ss) else { return };
    set_str(spec, "podManagementPolicy", "OrderedReady");
    let strategy = ensure_obj(spec, "updateStrategy");
    if strategy
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        strategy.insert("type".into(), Value::from("RollingUpdate"));
        set_missing(strategy, "rollingUpdate", json!({}));
    }
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        if let Some(ru) = strategy
            .get_mut("rollingUpdate")
            .and_then(Value::as_object_mut)
        {
            set_missing(ru, "partition", Value::from(0));
        }
    }
    let retention = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy");
    set_str(retention, "whenDeleted", "Retain");
    set_str(retention, "whenScaled", "Retain");
    set_missing(spec, "replicas", Value::from(1));
    set_missing(spec, "revisionHistoryLimit", Value::from(10));
    for vct in each_obj(spec, "volumeClaimTemplates") {
        set_missing(vct, "apiVersion", Value::from("v1"));
        set_missing(vct, "kind", Value::from("PersistentVolumeClaim"));
        default_pvc_spec(ensure_obj(vct, "spec"));
        set_str(ensure_obj(vct, "status"), "phase", "Pending");
    }
    default_template_in(spec);
}

/// Defaults of a JobSpec on a Job object.
fn default_job_spec(spec: &mut Map<String, Value>) {
    let unset = |spec: &Map<String, Value>, k: &str| spec.get(k).is_none_or(Value::is_null);
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), Value::from(1));
        spec.insert("parallelism".into(), Value::from(1));
    }
    set_missing(spec, "parallelism", Value::from(1));
    let backoff = if unset(spec, "backoffLimitPerIndex") {
        6
    } else {
        i64::from(i32::MAX)
    };
    set_missing(spec, "backoffLimit", Value::from(backoff));
    set_missing(spec, "completionMode", Value::from("NonIndexed"));
    set_missing(spec, "suspend", Value::from(false));
    let has_failure_policy = !unset(spec, "podFailurePolicy");
    if let Some(pfp) = spec
        .get_mut("podFailurePolicy")
        .and_then(Value::as_object_mut)
    {
        for rule in each_obj(pfp, "rules") {
            for cond in each_obj(rule, "onPodConditions") {
                set_str(cond, "status", "True");
            }
        }
    }
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_missing(spec, "podReplacementPolicy", Value::from(replacement));
    default_template_in(spec);
}

/// Job: completions/parallelism 1, backoffLimit 6, NonIndexed, not suspended, pod
/// replacement policy, and the template's labels as the Job's labels when it has none.
pub fn default_job(job: &mut Value) {
    let Some(obj) = job.as_object_mut() else {
        return;
    };
    let spec = ensure_obj(obj, "spec");
    default_job_spec(spec);
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned();
    if let Some(labels) = labels {
        let meta = ensure_obj(obj, "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|l| l.is_empty())
        {
            meta.insert("labels".into(), Value::Object(labels));
        }
    }
}

/// CronJob: Allow concurrency, not suspended, keep 3 successful and 1 failed job.
/// The job template only gets pod-template defaults, as upstream's defaulter only
/// reaches the PodSpec inside it.
pub fn default_cron_job(cj: &mut Value) {
    let Some(spec) = spec_of(cj) else { return };
    set_str(spec, "concurrencyPolicy", "Allow");
    set_missing(spec, "suspend", Value::from(false));
    set_missing(spec, "successfulJobsHistoryLimit", Value::from(3));
    set_missing(spec, "failedJobsHistoryLimit", Value::from(1));
    let job_spec = ensure_obj(ensure_obj(spec, "jobTemplate"), "spec");
    default_template_in(job_spec);
}
