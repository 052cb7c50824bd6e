//! The endpoints of a service from the pods it selects, without IO: each
//! pod with an IP contributes an address per service port whose target it
//! exposes (named target ports resolved in that pod's containers), ready
//! or not-ready by the pod's Ready condition (all ready with
//! `publishNotReadyAddresses`); addresses with the same ports share a
//! subset, in a stable order.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service, ServicePort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pods;

/// The container port a service port reaches on `pod`, if it exposes it.
pub fn target_port(sp: &ServicePort, pod: &Pod) -> Option<i32> {
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

fn address(pod: &Pod, ip: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_string(),
        hostname: pod
            .spec
            .as_ref()
            .and_then(|s| s.subdomain.as_ref().and(s.hostname.clone())),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    }
}

/// The subsets of `svc`'s Endpoints given the pods it selects.
pub fn subsets(svc: &Service, selected: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    // Port list (as a comparable key) → (ports, ready, not ready).
    type Group = (
        Vec<EndpointPort>,
        Vec<EndpointAddress>,
        Vec<EndpointAddress>,
    );
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Group> = BTreeMap::new();
    for pod in selected {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .unwrap_or("");
        if ip.is_empty() || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if !pods::is_active(pod) {
            continue;
        }
        let ports: Vec<EndpointPort> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|sp| {
                Some(EndpointPort {
                    name: sp.name.clone(),
                    port: target_port(sp, pod)?,
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        if ports.is_empty() && spec.ports.as_ref().is_some_and(|p| !p.is_empty()) {
            continue;
        }
        let key = ports
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port,
                    p.protocol.clone().unwrap_or_default(),
                )
            })
            .collect();
        let entry = groups
            .entry(key)
            .or_insert_with(|| (ports, Vec::new(), Vec::new()));
        if publish_not_ready || pods::is_ready(pod) {
            entry.1.push(address(pod, ip));
        } else {
            entry.2.push(address(pod, ip));
        }
    }
    groups
        .into_values()
        .map(|(mut ports, mut ready, mut not_ready)| {
            ports.sort_by(|a, b| a.name.cmp(&b.name).then(a.port.cmp(&b.port)));
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, ServiceSpec};
    use k8s_openapi::jiff::Timestamp;

    fn with_ip(mut p: Pod, ip: &str, port_name: Option<(&str, i32)>) -> Pod {
        p.status.as_mut().unwrap().pod_ip = Some(ip.into());
        p.spec.as_mut().unwrap().containers = vec![Container {
            name: "c".into(),
            ports: port_name.map(|(n, port)| {
                vec![ContainerPort {
                    name: Some(n.into()),
                    container_port: port,
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }];
        p
    }

    fn service(target: IntOrString, publish_not_ready: bool) -> Service {
        Service {
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(target),
                    ..Default::default()
                }]),
                publish_not_ready_addresses: Some(publish_not_ready),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn named_ports_resolve_per_pod_and_readiness_splits_addresses() {
        let ready = with_ip(
            pod("a", "n", "Running", Some(Timestamp::now())),
            "10.0.0.2",
            Some(("web", 8080)),
        );
        let unready = with_ip(
            pod("b", "n", "Running", None),
            "10.0.0.3",
            Some(("web", 8080)),
        );
        let other_port = with_ip(
            pod("c", "n", "Running", Some(Timestamp::now())),
            "10.0.0.4",
            Some(("web", 9090)),
        );
        let no_port = with_ip(
            pod("d", "n", "Running", Some(Timestamp::now())),
            "10.0.0.5",
            None,
        );
        let no_ip = pod("e", "n", "Pending", None);
        let svc = service(IntOrString::String("web".into()), false);
        let got = subsets(&svc, &[&ready, &unready, &other_port, &no_port, &no_ip]);
        assert_eq!(got.len(), 2, "{got:?}");
        let first = &got[0];
        assert_eq!(first.ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(first.addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
        assert_eq!(
            first.not_ready_addresses.as_ref().unwrap()[0].ip,
            "10.0.0.3"
        );
        assert_eq!(got[1].ports.as_ref().unwrap()[0].port, 9090);
        let published = subsets(&service(IntOrString::Int(8080), true), &[&unready]);
        assert_eq!(published[0].addresses.as_ref().unwrap()[0].ip, "10.0.0.3");
    }
}
