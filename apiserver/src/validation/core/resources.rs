//! Resource names and quantities: container requests/limits, quota and limit-range
//! resource names, and the per-value checks (non-negative, integral where required).

use serde_json::{Map, Value};

use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::IS_NEGATIVE_ERROR_MSG;
use crate::validation::names::is_qualified_name;
use crate::validation::quantity::Quantity;
use crate::validation::value::{child, key, obj};

/// Resources counted rather than measured, so their quantities must be whole numbers.
const INTEGER_RESOURCES: [&str; 11] = [
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "requests.storage",
    "storage",
];

const STANDARD_RESOURCES: [&str; 20] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
    "storage",
    "requests.storage",
];

pub fn is_hugepage(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Native resources are unprefixed or live under `kubernetes.io/`.
pub fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Extended resources: vendor-prefixed names usable as `requests.<name>` in quotas.
pub fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// Whether requests may be lower than limits for this resource.
pub fn is_overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepage(name)
}

fn is_integer_resource(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended(name)
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepage(name)
}

fn is_standard_resource(name: &str) -> bool {
    STANDARD_RESOURCES.contains(&name)
        || is_hugepage(name)
        || name.strip_prefix("requests.").is_some_and(is_hugepage)
        || name.strip_prefix("limits.").is_some_and(is_hugepage)
}

/// A resource name in general (quota, limit range): qualified, and standard when unprefixed.
pub fn validate_resource_name(name: &str, path: &str) -> FieldErrors {
    let errs: FieldErrors = is_qualified_name(name)
        .iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') && !is_standard_resource(name) {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    errs
}

/// A resource name inside a container's requests/limits.
pub fn validate_container_resource_name(name: &str, path: &str) -> FieldErrors {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') {
        if !is_standard_container_resource(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Parses a quantity and checks it is non-negative (and whole for counted resources).
/// Returns the parsed value so callers can compare it.
pub fn validate_quantity_value(
    name: &str,
    raw: &Value,
    path: &str,
) -> (Option<Quantity>, FieldErrors) {
    let q = match Quantity::from_json(raw) {
        Ok(q) => q,
        Err(e) => {
            return (
                None,
                vec![FieldError::invalid(path, raw.clone(), &e.to_string())],
            )
        }
    };
    let mut errs = Vec::new();
    if q.is_negative() {
        errs.push(FieldError::invalid(
            path,
            q.canonical(),
            IS_NEGATIVE_ERROR_MSG,
        ));
    }
    if is_integer_resource(name) && !q.is_integer() {
        errs.push(FieldError::invalid(
            path,
            q.canonical(),
            "must be an integer",
        ));
    }
    (Some(q), errs)
}

/// Checks that a hugepages quantity is a whole multiple of its page size.
fn hugepage_value_error(name: &str, q: &Quantity) -> Option<String> {
    let size = Quantity::parse(name.strip_prefix("hugepages-")?).ok()?;
    if size.nanos() <= 0 || q.nanos() % size.nanos() != 0 {
        return Some(format!(
            "{} is not positive integer multiple of {name}",
            q.canonical()
        ));
    }
    None
}

/// A container's `resources`: valid names and values, requests not above limits,
/// and requests equal to limits for resources that cannot be overcommitted.
pub fn validate_resource_requirements(res: &Value, path: &str) -> FieldErrors {
    let mut errs = Vec::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let empty = Map::new();
    let limits = obj(res, "limits").unwrap_or(&empty);
    let requests = obj(res, "requests").unwrap_or(&empty);
    let (mut lim_cpu_mem, mut req_cpu_mem, mut lim_huge, mut req_huge) =
        (false, false, false, false);

    for (name, raw) in limits {
        let p = key(&lim_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        let (q, e) = validate_quantity_value(name, raw, &p);
        errs.extend(e);
        if is_hugepage(name) {
            lim_huge = true;
            if let Some(msg) = q.as_ref().and_then(|q| hugepage_value_error(name, q)) {
                errs.push(FieldError::invalid(
                    &p,
                    q.map(|q| q.canonical()).unwrap_or_default(),
                    &msg,
                ));
            }
        }
        lim_cpu_mem |= name == "cpu" || name == "memory";
    }
    for (name, raw) in requests {
        let p = key(&req_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        let (q, e) = validate_quantity_value(name, raw, &p);
        errs.extend(e);
        if let Some(q) = q {
            match limits.get(name).and_then(|l| Quantity::from_json(l).ok()) {
                Some(limit) => {
                    // Note the path: upstream reports the whole requests map here.
                    if q != limit && !is_overcommit_allowed(name) {
                        errs.push(FieldError::invalid(
                            &req_path,
                            q.canonical(),
                            &format!("must be equal to {name} limit of {}", limit.canonical()),
                        ));
                    } else if q > limit {
                        errs.push(FieldError::invalid(
                            &req_path,
                            q.canonical(),
                            &format!(
                                "must be less than or equal to {name} limit of {}",
                                limit.canonical()
                            ),
                        ));
                    }
                }
                None if !is_overcommit_allowed(name) => {
                    errs.push(FieldError::required(
                        &lim_path,
                        "Limit must be set for non overcommitable resources",
                    ));
                }
                None => {}
            }
            if is_hugepage(name) {
                if let Some(msg) = hugepage_value_error(name, &q) {
                    errs.push(FieldError::invalid(&p, q.canonical(), &msg));
                }
            }
        }
        req_huge |= is_hugepage(name);
        req_cpu_mem |= name == "cpu" || name == "memory";
    }
    if !lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge) {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_above_limit() {
        let errs = validate_resource_requirements(
            &json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}),
            "r",
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "r.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
        );
    }

    #[test]
    fn bad_quantity_and_name() {
        let errs = validate_resource_requirements(
            &json!({"requests": {"memory": "1MB", "gpu": "1"}}),
            "r",
        );
        let s: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            vec![
                "r.requests[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified".to_string(),
                "r.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers".to_string(),
                "r.requests[memory]: Invalid value: \"1MB\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".to_string(),
            ]
        );
    }

    #[test]
    fn negative_and_extended() {
        let errs = validate_resource_requirements(
            &json!({"limits": {"cpu": "-1", "example.com/gpu": "1500m"}, "requests": {"example.com/gpu": "1500m"}}),
            "r",
        );
        let s: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            vec![
                "r.limits[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
                    .to_string(),
                "r.limits[example.com/gpu]: Invalid value: \"1500m\": must be an integer"
                    .to_string(),
                "r.requests[example.com/gpu]: Invalid value: \"1500m\": must be an integer"
                    .to_string(),
            ]
        );
        let errs =
            validate_resource_requirements(&json!({"requests": {"example.com/gpu": "1"}}), "r");
        assert_eq!(
            errs[0].to_string(),
            "r.limits: Required value: Limit must be set for non overcommitable resources"
        );
    }
}
