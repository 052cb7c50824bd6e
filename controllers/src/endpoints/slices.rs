//! EndpointSlices from a service's endpoint subsets, without IO: one
//! slice per port set, named `<service>-<n>`, labelled with the service's
//! name and this controller as manager, owned by the service.

use k8s_openapi::api::core::v1::{EndpointSubset, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGER: &str = "endpointslice-controller.k8s.io";

fn endpoints(subset: &EndpointSubset, ready: bool) -> Vec<Endpoint> {
    let list = if ready {
        subset.addresses.clone()
    } else {
        subset.not_ready_addresses.clone()
    };
    list.unwrap_or_default()
        .into_iter()
        .map(|a| Endpoint {
            addresses: vec![a.ip],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            hostname: a.hostname,
            node_name: a.node_name,
            target_ref: a.target_ref,
            ..Default::default()
        })
        .collect()
}

pub fn slices(svc: &Service, subsets: &[EndpointSubset]) -> Vec<EndpointSlice> {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.clone(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME.into(), name.clone());
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    // A service selecting nothing still has one (empty) slice, as upstream.
    let empty = [EndpointSubset::default()];
    let subsets = if subsets.is_empty() {
        &empty[..]
    } else {
        subsets
    };
    subsets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut eps = endpoints(s, true);
            eps.extend(endpoints(s, false));
            EndpointSlice {
                metadata: ObjectMeta {
                    name: Some(format!("{name}-{i}")),
                    namespace: svc.metadata.namespace.clone(),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..Default::default()
                },
                address_type: "IPv4".into(),
                endpoints: eps,
                ports: s.ports.as_ref().map(|ps| {
                    ps.iter()
                        .map(|p| EndpointPort {
                            name: p.name.clone(),
                            port: Some(p.port),
                            protocol: p.protocol.clone(),
                            app_protocol: p.app_protocol.clone(),
                        })
                        .collect()
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort as CorePort};

    #[test]
    fn one_slice_per_port_set_with_conditions() {
        let svc = Service {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let subset = EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: "10.0.0.1".into(),
                ..Default::default()
            }]),
            not_ready_addresses: Some(vec![EndpointAddress {
                ip: "10.0.0.2".into(),
                ..Default::default()
            }]),
            ports: Some(vec![CorePort {
                port: 5432,
                ..Default::default()
            }]),
        };
        let got = slices(&svc, &[subset]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].metadata.name.as_deref(), Some("db-0"));
        assert_eq!(got[0].endpoints.len(), 2);
        assert_eq!(
            got[0].endpoints[1].conditions.as_ref().unwrap().ready,
            Some(false)
        );
        assert_eq!(got[0].metadata.labels.as_ref().unwrap()[SERVICE_NAME], "db");
        assert_eq!(
            slices(&svc, &[]).len(),
            1,
            "an empty slice for no endpoints"
        );
    }
}
