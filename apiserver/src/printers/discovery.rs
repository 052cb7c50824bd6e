//! EndpointSlice rows (discovery.k8s.io/v1).

use serde_json::Value;
use time::OffsetDateTime;

use super::{age, at, col, list, name, s, text, Column, AGE, NAME};

pub(super) const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "Kind of the addresses: IPv4, IPv6 or FQDN.",
    ),
    col("Ports", "string", "Port numbers (or names), the first few."),
    col("Endpoints", "string", "Endpoint addresses, the first few."),
    AGE,
];

pub(super) fn endpoint_slice_row(eps: &Value, now: OffsetDateTime) -> Vec<Value> {
    let ports = list(eps, &["ports"])
        .iter()
        .map(|p| match at(p, &["port"]) {
            Some(n) => n.to_string(),
            None => at(p, &["name"])
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
        });
    let addresses = list(eps, &["endpoints"])
        .iter()
        .flat_map(|ep| list(ep, &["addresses"]))
        .map(|a| a.as_str().unwrap_or("").to_string());
    vec![
        name(eps),
        s(text(eps, &["addressType"])),
        s(first_few(ports)),
        s(first_few(addresses)),
        age(eps, now),
    ]
}

/// The first three items joined by `,` and `+ N more...` for the rest, or
/// `<unset>` when there are none.
fn first_few(items: impl Iterator<Item = String>) -> String {
    const MAX: usize = 3;
    let all: Vec<String> = items.collect();
    let shown = all[..all.len().min(MAX)].join(",");
    if all.len() > MAX {
        format!("{shown} + {} more...", all.len() - MAX)
    } else if shown.is_empty() {
        "<unset>".to_string()
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::super::row;
    use super::super::test_support::{ago, NOW};
    use serde_json::json;

    #[test]
    fn endpoint_slices() {
        let eps = json!({
            "metadata": {"name": "web-x7k2p", "creationTimestamp": ago(30)},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]},
                          {"addresses": ["10.0.0.4"]}, {"addresses": ["10.0.0.5"]}]
        });
        assert_eq!(
            row("discovery.k8s.io/EndpointSlice", &eps, NOW),
            [
                json!("web-x7k2p"),
                json!("IPv4"),
                json!("80,named,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."),
                json!("30s")
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "FQDN"});
        assert_eq!(
            row("EndpointSlice", &empty, NOW)[1..4],
            [json!("FQDN"), json!("<unset>"), json!("<unset>")]
        );
    }
}
