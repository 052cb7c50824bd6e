//! Rows of the batch/v1 kinds: Job and CronJob.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{
    age, at, col, containers_cells, human_duration, int, label_selector_cell, list, name, s, since,
    text, timestamp, wide, Column, AGE, CONTAINERS, IMAGES, NAME,
};

const SELECTOR: Column = wide("Selector", "string", "Label selector of the job's pods.");

pub(super) const JOB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "Overall state of the job, from its conditions.",
    ),
    col(
        "Completions",
        "string",
        "Succeeded pods out of the completions wanted.",
    ),
    col(
        "Duration",
        "string",
        "How long the job ran, or has been running.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// Whether the job's first condition of `kind` is True.
fn has_condition(job: &Value, kind: &str) -> bool {
    list(job, &["status", "conditions"])
        .iter()
        .find(|c| text(c, &["type"]) == kind)
        .is_some_and(|c| text(c, &["status"]) == "True")
}

pub(super) fn job_row(job: &Value, now: OffsetDateTime) -> Vec<Value> {
    let succeeded = int(job, &["status", "succeeded"]);
    let completions = match at(job, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(wanted) => format!("{succeeded}/{wanted}"),
        None => match int(job, &["spec", "parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = timestamp(job, &["status", "startTime"]);
    let duration = match (start, timestamp(job, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), now),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    // Terminal conditions first, then deletion, then the transient ones.
    let status = if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if at(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let [names, images] = containers_cells(at(job, &["spec", "template", "spec"]));
    vec![
        name(job),
        s(status),
        s(completions),
        s(duration),
        age(job, now),
        names,
        images,
        label_selector_cell(job, &["spec", "selector"]),
    ]
}

pub(super) const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Schedule", "string", "The cron schedule."),
    col(
        "Timezone",
        "string",
        "Time zone the schedule is interpreted in.",
    ),
    col("Suspend", "boolean", "Whether new runs are suspended."),
    col("Active", "integer", "Number of jobs currently running."),
    col(
        "Last Schedule",
        "string",
        "Time since a job was last scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn cron_job_row(cj: &Value, now: OffsetDateTime) -> Vec<Value> {
    let last_schedule = match timestamp(cj, &["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t), now),
        None => "<none>".to_string(),
    };
    let time_zone = at(cj, &["spec", "timeZone"])
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    // The cell is text even though the column says boolean, as upstream.
    let suspend = match at(cj, &["spec", "suspend"]).and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let job_spec = at(cj, &["spec", "jobTemplate", "spec"]);
    let [names, images] = containers_cells(job_spec.and_then(|j| at(j, &["template", "spec"])));
    vec![
        name(cj),
        s(text(cj, &["spec", "schedule"])),
        s(time_zone),
        s(suspend),
        json!(list(cj, &["status", "active"]).len()),
        s(last_schedule),
        age(cj, now),
        names,
        images,
        label_selector_cell(cj, &["spec", "jobTemplate", "spec", "selector"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::row;
    use super::super::test_support::{ago, NOW};
    use serde_json::json;

    #[test]
    fn jobs() {
        let job = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(400)},
            "spec": {"completions": 1, "parallelism": 1,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}},
            "status": {"succeeded": 1, "startTime": ago(400), "completionTime": ago(350),
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                      {"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            row("batch/Job", &job, NOW),
            [
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("50s"),
                json!("6m40s"),
                json!("pi"),
                json!("perl:5.34"),
                json!("batch.kubernetes.io/controller-uid=u1")
            ]
        );
        let running = json!({
            "metadata": {"name": "work"},
            "spec": {"parallelism": 3},
            "status": {"succeeded": 2, "startTime": ago(125)}
        });
        assert_eq!(
            row("Job", &running, NOW)[1..4],
            [json!("Running"), json!("2/1 of 3"), json!("2m5s")]
        );
        let new = json!({"metadata": {"name": "new"}, "spec": {}});
        assert_eq!(
            row("Job", &new, NOW)[1..4],
            [json!("Running"), json!("0/1"), json!("")]
        );
        let failed = json!({"metadata": {"name": "f", "deletionTimestamp": ago(1)},
                            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(row("Job", &failed, NOW)[1], json!("Failed"));
        let deleting = json!({"metadata": {"name": "d", "deletionTimestamp": ago(1)},
                              "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(row("Job", &deleting, NOW)[1], json!("Terminating"));
        let suspended = json!({"metadata": {"name": "s"},
                               "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(row("Job", &suspended, NOW)[1], json!("Suspended"));
        let target = json!({"metadata": {"name": "t"},
                            "status": {"conditions": [{"type": "FailureTarget", "status": "True"},
                                                      {"type": "Failed", "status": "False"}]}});
        assert_eq!(row("Job", &target, NOW)[1], json!("FailureTarget"));
    }

    #[test]
    fn cron_jobs() {
        let cj = json!({
            "metadata": {"name": "hello", "creationTimestamp": ago(86400 * 3)},
            "spec": {"schedule": "*/5 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                         {"name": "hello", "image": "busybox:1.28"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(61)}
        });
        assert_eq!(
            row("batch/CronJob", &cj, NOW),
            [
                json!("hello"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("61s"),
                json!("3d"),
                json!("hello"),
                json!("busybox:1.28"),
                json!("<none>")
            ]
        );
        let tz = json!({"metadata": {"name": "x"},
                        "spec": {"schedule": "0 0 * * *", "timeZone": "Etc/UTC", "suspend": true}});
        assert_eq!(
            row("CronJob", &tz, NOW)[2..6],
            [json!("Etc/UTC"), json!("True"), json!(0), json!("<none>")]
        );
        let unset = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(row("CronJob", &unset, NOW)[3], json!("<unset>"));
    }
}
