//! `pods/eviction` (policy/v1 Eviction): a delete that honours the
//! PodDisruptionBudgets covering the pod, as kube-apiserver's eviction REST
//! does.
//!
//! Pods that are not Running (Pending, Succeeded, Failed) or already being
//! deleted are deleted at once. Otherwise the one budget whose selector
//! matches the pod decides: more than one is a 500; a budget whose status
//! lags its spec, or that allows no disruption, answers 429 TooManyRequests;
//! otherwise `status.disruptionsAllowed` is decremented (and the pod noted in
//! `disruptedPods`) through a guaranteed update before the pod is deleted.
//! An unready pod may skip the budget (`unhealthyPodEvictionPolicy`
//! AlwaysAllow, or the budget is satisfied without it). Every evicted pod
//! first gets a `DisruptionTarget` condition. The decisions are the pure
//! functions below; `Registry::evict` does the reads and writes.

use serde_json::{json, Map, Value};

use super::options::{DeleteOptions, ListOptions, WriteOptions};
use super::store::Part;
use super::subresources::success;
use super::Registry;
use crate::error::{ApiError, ApiResult, Details, Reason};
use crate::meta;
use crate::selector::LabelSelector;
use crate::storage::Revision;

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
const MULTIPLE_BUDGETS: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";
/// Evictions the disruption controller has not confirmed yet, at most.
const MAX_DISRUPTED_PODS: usize = 2000;
/// How often an eviction is judged again when the pod changed under it.
const EVICTION_RETRIES: u32 = 20;

fn phase(pod: &Value) -> &str {
    meta::str_at(pod, &["status", "phase"]).unwrap_or("")
}

/// Pods whose deletion disrupts nothing a budget counts: finished, not yet
/// running, or already terminating.
pub fn can_ignore_budgets(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending")
        || meta::deletion_timestamp(pod).is_some()
}

/// Whether deleting a budget-free pod must still be pinned to the version
/// that was judged (everything but finished or terminating pods, which
/// cannot become ready again).
fn pin_version_when_ignoring(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && meta::deletion_timestamp(pod).is_none()
}

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The budgets (from one namespace's list) whose selector selects the pod;
/// a budget without a selector, or with one that does not convert, selects
/// nothing.
pub fn matching_budgets<'a>(pod: &Value, budgets: &'a [Value]) -> Vec<&'a Value> {
    let empty = Map::new();
    let labels = meta::labels(pod).unwrap_or(&empty);
    budgets
        .iter()
        .filter(|b| {
            let sel = b.pointer("/spec/selector").unwrap_or(&Value::Null);
            LabelSelector::from_label_selector_json(sel).is_ok_and(|s| s.matches(labels))
        })
        .collect()
}

/// For an unready pod: whether the budget lets it go without spending a
/// disruption (it does not count as healthy anyway).
pub fn unready_pod_may_skip(budget: &Value) -> bool {
    let status = |f: &str| {
        budget
            .pointer(&format!("/status/{f}"))
            .and_then(Value::as_i64)
    };
    budget.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"))
        || status("desiredHealthy")
            .is_some_and(|desired| desired > 0 && status("currentHealthy").unwrap_or(0) >= desired)
}

fn too_many_requests(retry_after: Option<u64>, cause: String) -> ApiError {
    let mut e = ApiError::new(Reason::TooManyRequests, VIOLATION);
    e.details = Some(Box::new(Details {
        causes: vec![json!({"reason": "DisruptionBudget", "message": cause})],
        retry_after_seconds: retry_after,
        ..Default::default()
    }));
    e
}

/// The 429 for a budget whose status does not reflect its spec yet.
fn still_processing(budget_name: &str) -> ApiError {
    too_many_requests(
        Some(10),
        format!("The disruption budget {budget_name} is still being processed by the server."),
    )
}

fn forbidden(budget_name: &str, why: &str) -> ApiError {
    ApiError::new(
        Reason::Forbidden,
        format!("poddisruptionbudget.policy \"{budget_name}\" is forbidden: {why}"),
    )
}

/// Spends one disruption of `budget` on evicting `pod_name` at `now`: the
/// budget as it must be stored, or the error that refuses the eviction.
/// When the last allowed disruption is spent the DisruptionAllowed condition
/// turns False. `dry_run` leaves `disruptedPods` alone, as upstream.
pub fn check_and_decrement(
    budget: &Value,
    pod_name: &str,
    now: &str,
    dry_run: bool,
) -> ApiResult<Value> {
    let name = meta::name(budget);
    let status = |f: &str| {
        budget
            .pointer(&format!("/status/{f}"))
            .and_then(Value::as_i64)
    };
    let generation = budget
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if status("observedGeneration").unwrap_or(0) < generation {
        return Err(still_processing(name));
    }
    let allowed = status("disruptionsAllowed").unwrap_or(0);
    if allowed < 0 {
        return Err(forbidden(name, "pdb disruptions allowed is negative"));
    }
    let disrupted = budget
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(forbidden(
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(too_many_requests(
            None,
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                status("desiredHealthy").unwrap_or(0),
                status("currentHealthy").unwrap_or(0)
            ),
        ));
    }
    let mut new = budget.clone();
    new["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed == 1 {
        set_disruption_allowed_false(&mut new["status"], now);
    }
    if !dry_run {
        if !new["status"]["disruptedPods"].is_object() {
            new["status"]["disruptedPods"] = json!({});
        }
        new["status"]["disruptedPods"][pod_name] = json!(now);
    }
    Ok(new)
}

/// Upstream's SetStatusCondition for DisruptionAllowed=False
/// (InsufficientPods): the transition time moves only when the status does.
fn set_disruption_allowed_false(status: &mut Value, now: &str) {
    let observed = status
        .get("observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"].as_array_mut().expect("array");
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed")
    {
        Some(c) => {
            if c["status"] != "False" {
                c["status"] = json!("False");
                c["lastTransitionTime"] = json!(now);
            }
            c["reason"] = json!("InsufficientPods");
            c["observedGeneration"] = observed;
        }
        None => conditions.push(json!({
            "type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
            "message": "", "observedGeneration": observed, "lastTransitionTime": now,
        })),
    }
}

/// Adds (or refreshes) the DisruptionTarget condition an evicted pod
/// carries; the transition time stays when the condition was already True.
pub fn add_disruption_target(pod: &mut Value, now: &str) {
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let conditions = pod["status"]["conditions"].as_array_mut().expect("array");
    let since = conditions
        .iter()
        .find(|c| c["type"] == "DisruptionTarget" && c["status"] == "True")
        .map_or(json!(now), |c| c["lastTransitionTime"].clone());
    conditions.retain(|c| c["type"] != "DisruptionTarget");
    conditions.push(json!({
        "type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": since, "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }));
}

fn resource_version(obj: &Value) -> Option<Revision> {
    meta::str_at(obj, &["metadata", "resourceVersion"])?
        .parse()
        .ok()
}

impl Registry {
    /// `pods/eviction`: answers the HTTP code and Status to send (201
    /// Success, or upstream's 500 Status for a pod under several budgets).
    pub async fn evict(
        &self,
        ns: Option<&str>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(u16, Value)> {
        if meta::name(&body) != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let mut delete = DeleteOptions {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        if let Some(o) = body.get("deleteOptions").filter(|o| o.is_object()) {
            delete.merge_body(o)?;
        }
        let pods = self.kind("pods");
        // A pod that may go regardless of budgets is deleted as judged; if
        // it changed meanwhile it is judged again (unless the client pinned
        // a version itself).
        let mut attempts = 0;
        let pod = loop {
            let pod = self.get(pods.as_ref(), ns, name).await?;
            if !can_ignore_budgets(&pod) {
                break pod;
            }
            let mut pinned = delete.clone();
            if pin_version_when_ignoring(&pod) && delete.resource_version.is_none() {
                pinned.resource_version = resource_version(&pod);
            }
            match self.delete_evicted(ns, name, pinned).await {
                Err(e)
                    if e.reason == Reason::Conflict
                        && delete.resource_version.is_none()
                        && attempts < EVICTION_RETRIES =>
                {
                    attempts += 1;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok((201, success(201))),
            }
        };
        let budgets = self
            .list(
                &self.budgets(),
                Some(meta::namespace(&pod)),
                &ListOptions::default(),
            )
            .await?;
        let budgets = budgets["items"].as_array().cloned().unwrap_or_default();
        let matching = matching_budgets(&pod, &budgets);
        if matching.len() > 1 {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": MULTIPLE_BUDGETS, "code": 500});
            return Ok((500, status));
        }
        let mut pin_to_judged = false;
        if let Some(budget) = matching.first() {
            if !is_ready(&pod) && unready_pod_may_skip(budget) {
                pin_to_judged = true;
            } else {
                self.spend_disruption(ns, meta::name(budget), name, delete.dry_run)
                    .await?;
            }
        }
        let mut judged = delete.clone();
        if pin_to_judged {
            judged.resource_version = resource_version(&pod);
        }
        match self.delete_evicted(ns, name, judged).await {
            Err(e)
                if e.reason == Reason::Conflict
                    && pin_to_judged
                    && delete.resource_version.is_none() =>
            {
                Err(still_processing(meta::name(matching[0])))
            }
            Err(e) => Err(e),
            Ok(()) => Ok((201, success(201))),
        }
    }

    fn budgets(&self) -> std::sync::Arc<dyn super::strategy::Strategy> {
        self.find("policy", "v1", "poddisruptionbudgets")
            .expect("PodDisruptionBudgets are served")
    }

    /// Decrements the budget's allowed disruptions (retrying on conflicts
    /// with the current budget, as a guaranteed update does).
    async fn spend_disruption(
        &self,
        ns: Option<&str>,
        budget: &str,
        pod: &str,
        dry_run: bool,
    ) -> ApiResult<()> {
        let now = meta::now_rfc3339();
        self.update_with(
            self.budgets().as_ref(),
            ns,
            budget,
            Part::Status,
            &WriteOptions {
                dry_run,
                ..Default::default()
            },
            |old| {
                let mut new = check_and_decrement(old, pod, &now, dry_run)?;
                meta::metadata_mut(&mut new).remove("resourceVersion");
                Ok(new)
            },
        )
        .await?;
        Ok(())
    }

    /// Marks the pod as a disruption target (unless dry-run), then deletes
    /// it with the eviction's delete options; the preconditions hold for the
    /// version that was judged, and the condition's own write moves the
    /// resourceVersion precondition along.
    async fn delete_evicted(
        &self,
        ns: Option<&str>,
        name: &str,
        mut opts: DeleteOptions,
    ) -> ApiResult<()> {
        let pods = self.kind("pods");
        if !opts.dry_run {
            let now = meta::now_rfc3339();
            let (uid, rv) = (opts.uid.clone(), opts.resource_version);
            let marked = self
                .update_with(pods.as_ref(), ns, name, Part::Internal, &WriteOptions::default(), |old| {
                    let precondition_failed = |what: &str, want: &str, have: &str| {
                        let why = format!(
                            "the {what} in the precondition ({want}) does not match the {what} in record ({have}). {}",
                            if what == "UID" {
                                "The object might have been deleted and then recreated"
                            } else {
                                "The object might have been modified"
                            }
                        );
                        ApiError::conflict("", "Pod", name, &why)
                    };
                    let have_uid = meta::str_at(old, &["metadata", "uid"]).unwrap_or("");
                    if let Some(uid) = uid.as_deref().filter(|u| !u.is_empty() && *u != have_uid) {
                        return Err(precondition_failed("UID", uid, have_uid));
                    }
                    let have_rv = resource_version(old);
                    if let Some(rv) = rv.filter(|rv| Some(*rv) != have_rv) {
                        let have = have_rv.map(|r| r.to_string()).unwrap_or_default();
                        return Err(precondition_failed("ResourceVersion", &rv.to_string(), &have));
                    }
                    let mut new = old.clone();
                    add_disruption_target(&mut new, &now);
                    meta::metadata_mut(&mut new).remove("resourceVersion");
                    Ok(new)
                })
                .await?;
            if opts.resource_version.is_some() {
                opts.resource_version = resource_version(&marked);
            }
        }
        self.delete(pods.as_ref(), ns, name, &opts).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2024-05-10T12:00:00Z";

    fn pod(phase: &str, ready: bool) -> Value {
        json!({"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}},
               "status": {"phase": phase, "conditions": [
                   {"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    fn budget(name: &str, allowed: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "generation": 1},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 1},
               "status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
                          "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}})
    }

    #[test]
    fn only_running_pods_are_guarded() {
        for phase in ["Pending", "Succeeded", "Failed"] {
            assert!(can_ignore_budgets(&pod(phase, false)), "{phase}");
        }
        assert!(!can_ignore_budgets(&pod("Running", true)));
        let mut terminating = pod("Running", true);
        terminating["metadata"]["deletionTimestamp"] = json!(NOW);
        assert!(can_ignore_budgets(&terminating));
        assert!(!pin_version_when_ignoring(&terminating));
        assert!(pin_version_when_ignoring(&pod("Pending", false)));
        assert!(!pin_version_when_ignoring(&pod("Failed", false)));
    }

    #[test]
    fn readiness() {
        assert!(is_ready(&pod("Running", true)));
        assert!(!is_ready(&pod("Running", false)));
        assert!(!is_ready(&json!({"status": {"phase": "Running"}})));
    }

    #[test]
    fn budgets_match_by_selector() {
        let mut other = budget("other", 1);
        other["spec"]["selector"] = json!({"matchLabels": {"app": "db"}});
        let mut everything = budget("all", 1);
        everything["spec"]["selector"] = json!({});
        let mut none = budget("none", 1);
        none["spec"].as_object_mut().unwrap().remove("selector");
        let budgets = [budget("web", 1), other, everything, none];
        let names: Vec<&str> = matching_budgets(&pod("Running", true), &budgets)
            .into_iter()
            .map(meta::name)
            .collect();
        assert_eq!(names, ["web", "all"]);
    }

    #[test]
    fn no_allowed_disruption_is_a_429_with_a_cause() {
        let err = check_and_decrement(&budget("web", 0), "web-1", NOW, false).unwrap_err();
        let status = err.to_status();
        assert_eq!(status["code"], 429);
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(
            status["message"],
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(
            status["details"]["causes"],
            json!([{"reason": "DisruptionBudget",
                    "message": "The disruption budget web needs 1 healthy pods and has 2 currently"}])
        );
        assert!(status["details"].get("retryAfterSeconds").is_none());
    }

    #[test]
    fn a_budget_without_status_is_still_being_processed() {
        let mut fresh = budget("web", 0);
        fresh["status"] = json!({"disruptionsAllowed": 0, "currentHealthy": 0,
                                 "desiredHealthy": 0, "expectedPods": 0});
        let status = check_and_decrement(&fresh, "web-1", NOW, false)
            .unwrap_err()
            .to_status();
        assert_eq!(status["code"], 429);
        assert_eq!(status["details"]["retryAfterSeconds"], 10);
        assert_eq!(
            status["details"]["causes"][0]["message"],
            "The disruption budget web is still being processed by the server."
        );
        let mut negative = budget("web", -1);
        negative["status"]["disruptionsAllowed"] = json!(-1);
        assert_eq!(
            check_and_decrement(&negative, "p", NOW, false)
                .unwrap_err()
                .code(),
            403
        );
    }

    #[test]
    fn spending_the_last_disruption() {
        let after = check_and_decrement(&budget("web", 1), "web-1", NOW, false).unwrap();
        assert_eq!(after["status"]["disruptionsAllowed"], 0);
        assert_eq!(after["status"]["disruptedPods"], json!({"web-1": NOW}));
        assert_eq!(
            after["status"]["conditions"],
            json!([{"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                    "message": "", "observedGeneration": 1, "lastTransitionTime": NOW}])
        );
        let two = check_and_decrement(&budget("web", 2), "web-1", NOW, true).unwrap();
        assert_eq!(two["status"]["disruptionsAllowed"], 1);
        assert!(two["status"].get("disruptedPods").is_none());
        assert!(two["status"].get("conditions").is_none());
    }

    #[test]
    fn unready_pods_may_skip_a_satisfied_budget() {
        assert!(unready_pod_may_skip(&budget("web", 0)));
        let mut short = budget("web", 0);
        short["status"]["currentHealthy"] = json!(0);
        assert!(!unready_pod_may_skip(&short));
        short["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
        assert!(unready_pod_may_skip(&short));
    }

    #[test]
    fn disruption_target_condition() {
        let mut p = pod("Running", true);
        add_disruption_target(&mut p, NOW);
        add_disruption_target(&mut p, "2030-01-01T00:00:00Z");
        let conditions = p["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 2);
        assert_eq!(
            conditions[1],
            json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
                   "lastTransitionTime": NOW, "reason": "EvictionByEvictionAPI",
                   "message": "Eviction API: evicting"})
        );
    }
}
