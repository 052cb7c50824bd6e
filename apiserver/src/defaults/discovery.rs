//! Defaulting of discovery.k8s.io/v1 EndpointSlices: every port gets a name
//! (empty) and a protocol (TCP).

use serde_json::Value;

use super::pod::{each_obj, set_missing};

/// EndpointSlice: `name: ""` and `protocol: TCP` on ports that lack them.
pub fn default_endpoint_slice(eps: &mut Value) {
    let Some(obj) = eps.as_object_mut() else {
        return;
    };
    for port in each_obj(obj, "ports") {
        set_missing(port, "name", Value::from(""));
        set_missing(port, "protocol", Value::from("TCP"));
    }
}
