//! Services: ClusterIP and NodePort allocation, and keeping allocated values
//! across updates that omit them (as kube-apiserver does).
//!
//! Allocation state lives in memory and is rebuilt from stored services at
//! start (`ServiceAllocators::rebuild`); a single mutex makes concurrent
//! creates never hand out the same IP or port.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use openapi::{ResourceDescriptor, Subresource};
use serde_json::{json, Value};

use super::{ALL_VERBS, STATUS_VERBS};
use crate::error::{ApiError, ApiResult};
use crate::registry::strategy::{copy_field, roundtrip, Strategy};
use crate::registry::Registry;
use crate::validation::field_error::FieldError;

pub const SERVICE_CIDR_DEFAULT: &str = "10.96.0.0/12";
pub const NODE_PORT_RANGE: (u16, u16) = (30000, 32767);

pub struct Services;

#[derive(Debug)]
struct AllocState {
    base: u32,
    size: u32,
    ips: BTreeSet<u32>,
    ports: BTreeSet<u16>,
    next_ip: u32,
    next_port: u16,
}

/// Cluster IPs (offsets into the service CIDR) and node ports in use.
#[derive(Debug)]
pub struct ServiceAllocators {
    state: Mutex<AllocState>,
}

impl ServiceAllocators {
    /// `cidr` like "10.96.0.0/12" (IPv4 only).
    pub fn new(cidr: &str) -> Result<Self, String> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {cidr}"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("invalid CIDR {cidr}"))?;
        let bits: u32 = bits.parse().map_err(|_| format!("invalid CIDR {cidr}"))?;
        if !(8..=30).contains(&bits) {
            return Err(format!(
                "service CIDR {cidr} must have a prefix between /8 and /30"
            ));
        }
        let size = 1u32 << (32 - bits);
        let base = u32::from(ip) & !(size - 1);
        Ok(ServiceAllocators {
            state: Mutex::new(AllocState {
                base,
                size,
                ips: BTreeSet::new(),
                ports: BTreeSet::new(),
                next_ip: 2,
                next_port: NODE_PORT_RANGE.0,
            }),
        })
    }

    /// The first usable address, reserved for the `kubernetes` service.
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.state.lock().expect("lock").base + 1)
    }

    /// Marks what the given stored services hold as used.
    pub fn rebuild<'a>(&self, services: impl Iterator<Item = &'a Value>) {
        let mut st = self.state.lock().expect("lock");
        for svc in services {
            if let Some(off) = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .and_then(|ip| st.offset(ip))
            {
                st.ips.insert(off);
            }
            for p in node_ports(svc) {
                st.ports.insert(p);
            }
        }
    }

    fn allocate_ip(&self, requested: Option<&str>) -> Result<Ipv4Addr, FieldError> {
        let mut st = self.state.lock().expect("lock");
        if let Some(ip) = requested {
            let off = st.offset(ip).ok_or_else(|| {
                invalid(
                    "spec.clusterIPs",
                    json!([ip]),
                    &format!(
                        "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                        st.range()
                    ),
                )
            })?;
            if !st.ips.insert(off) {
                return Err(invalid(
                    "spec.clusterIPs",
                    json!([ip]),
                    &format!("failed to allocate IP {ip}: provided IP is already allocated"),
                ));
            }
            return Ok(Ipv4Addr::from(st.base + off));
        }
        let usable = st.size - 2;
        for i in 0..usable {
            let off = 1 + (st.next_ip - 1 + i) % usable;
            if !st.ips.contains(&off) {
                st.ips.insert(off);
                st.next_ip = off + 1;
                return Ok(Ipv4Addr::from(st.base + off));
            }
        }
        Err(invalid(
            "spec.clusterIPs",
            Value::Null,
            "failed to allocate IP: range is full",
        ))
    }

    fn allocate_port(&self, requested: u16, field: &str) -> Result<u16, FieldError> {
        let mut st = self.state.lock().expect("lock");
        let (lo, hi) = NODE_PORT_RANGE;
        if requested != 0 {
            if !(lo..=hi).contains(&requested) {
                return Err(invalid(
                    field,
                    json!(requested),
                    &format!("provided port is not in the valid range. The range of valid ports is {lo}-{hi}"),
                ));
            }
            if !st.ports.insert(requested) {
                return Err(invalid(
                    field,
                    json!(requested),
                    "provided port is already allocated",
                ));
            }
            return Ok(requested);
        }
        let span = hi - lo + 1;
        for i in 0..span {
            let p = lo + (st.next_port - lo + i) % span;
            if !st.ports.contains(&p) {
                st.ports.insert(p);
                st.next_port = if p == hi { lo } else { p + 1 };
                return Ok(p);
            }
        }
        Err(invalid(
            field,
            Value::Null,
            "failed to allocate a nodePort: range is full",
        ))
    }

    /// Releases everything `svc` holds.
    pub fn release(&self, svc: &Value) {
        let mut st = self.state.lock().expect("lock");
        if let Some(off) = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|ip| st.offset(ip))
        {
            st.ips.remove(&off);
        }
        for p in node_ports(svc) {
            st.ports.remove(&p);
        }
    }

    fn release_ports(&self, ports: impl Iterator<Item = u16>) {
        let mut st = self.state.lock().expect("lock");
        for p in ports {
            st.ports.remove(&p);
        }
    }

    /// Allocates what a new or changed service lacks. On error nothing new
    /// stays allocated.
    fn allocate_for(&self, svc: &mut Value, old: Option<&Value>) -> Result<(), FieldError> {
        let svc_type = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        let mut taken_ip = None;
        let needs_ip = svc_type != "ExternalName";
        let current_ip = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let old_ip = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if needs_ip && current_ip != "None" && (current_ip.is_empty() || current_ip != old_ip) {
            let requested = (!current_ip.is_empty()).then_some(current_ip.as_str());
            let ip = self.allocate_ip(requested)?.to_string();
            svc["spec"]["clusterIP"] = json!(ip);
            svc["spec"]["clusterIPs"] = json!([ip]);
            taken_ip = Some(ip);
        }
        if needs_ip {
            if current_ip == "None" {
                svc["spec"]["clusterIPs"] = json!(["None"]);
            }
            let spec = svc["spec"].as_object_mut().expect("spec");
            spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
            spec.entry("ipFamilyPolicy")
                .or_insert_with(|| json!("SingleStack"));
        }
        let wants_node_ports = svc_type == "NodePort" || svc_type == "LoadBalancer";
        let old_ports: BTreeSet<u16> = old
            .map(node_ports)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut taken_ports = Vec::new();
        let mut result = Ok(());
        if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for (i, port) in ports.iter_mut().enumerate() {
                let requested = port.get("nodePort").and_then(Value::as_u64).unwrap_or(0) as u16;
                if !wants_node_ports {
                    if let Some(m) = port.as_object_mut() {
                        m.remove("nodePort");
                    }
                    continue;
                }
                if requested != 0 && old_ports.contains(&requested) {
                    continue;
                }
                match self.allocate_port(requested, &format!("spec.ports[{i}].nodePort")) {
                    Ok(p) => {
                        port["nodePort"] = json!(p);
                        taken_ports.push(p);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if result.is_err() {
            self.release_ports(taken_ports.into_iter());
            if let Some(ip) = taken_ip {
                let mut st = self.state.lock().expect("lock");
                if let Some(off) = st.offset(&ip) {
                    st.ips.remove(&off);
                }
            }
        }
        result
    }
}

impl AllocState {
    fn offset(&self, ip: &str) -> Option<u32> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let v = u32::from(ip);
        (v > self.base && v < self.base + self.size - 1).then(|| v - self.base)
    }

    fn range(&self) -> String {
        format!(
            "{}/{}",
            Ipv4Addr::from(self.base),
            32 - self.size.trailing_zeros()
        )
    }
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("nodePort")?.as_u64())
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(field: &str, value: Value, detail: &str) -> FieldError {
    FieldError::invalid(field, value, detail)
}

fn invalid_service(svc: &Value, err: FieldError) -> ApiError {
    ApiError::invalid("", "Service", crate::meta::name(svc), &[err])
}

impl Strategy for Services {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn descriptor(&self) -> &ResourceDescriptor {
        static D: ResourceDescriptor = ResourceDescriptor {
            group: "",
            version: "v1",
            kind: "Service",
            resource: "services",
            singular: "service",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["svc"],
            categories: &["all"],
            subresources: &[Subresource {
                name: "status",
                group: "",
                version: "v1",
                kind: "Service",
                verbs: STATUS_VERBS,
            }],
        };
        &D
    }

    fn normalize(&self, obj: Value) -> Result<Value, String> {
        roundtrip::<k8s_openapi::api::core::v1::Service>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"loadBalancer": {}});
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        copy_field(obj, old, "status");
        // Allocated values survive updates that omit them.
        let new_ip = obj
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        if new_ip.is_empty() {
            if let Some(ip) = old.pointer("/spec/clusterIP").cloned() {
                obj["spec"]["clusterIP"] = ip;
                copy_spec_field(obj, old, "clusterIPs");
            }
        }
        let old_ports = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                    continue;
                }
                let same = old_ports.iter().find(|o| {
                    o.get("port") == p.get("port")
                        && o.get("protocol").unwrap_or(&json!("TCP"))
                            == p.get("protocol").unwrap_or(&json!("TCP"))
                });
                if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                    p["nodePort"] = np.clone();
                }
            }
        }
    }

    fn admit_create(&self, registry: &Registry, obj: &mut Value) -> ApiResult<()> {
        registry
            .services
            .allocate_for(obj, None)
            .map_err(|e| invalid_service(obj, e))
    }

    fn admit_update(&self, registry: &Registry, obj: &mut Value, old: &Value) -> ApiResult<()> {
        registry
            .services
            .allocate_for(obj, Some(old))
            .map_err(|e| invalid_service(obj, e))?;
        // Node ports the new object no longer holds are freed.
        let kept: BTreeSet<u16> = node_ports(obj).into_iter().collect();
        registry
            .services
            .release_ports(node_ports(old).into_iter().filter(|p| !kept.contains(p)));
        Ok(())
    }

    fn release(&self, registry: &Registry, obj: &Value) {
        registry.services.release(obj);
    }
}

fn copy_spec_field(obj: &mut Value, old: &Value, field: &str) {
    if let Some(v) = old.get("spec").and_then(|s| s.get(field)) {
        obj["spec"][field] = v.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_ips_and_ports_and_releases_them() {
        let a = ServiceAllocators::new("10.96.0.0/28").unwrap();
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        a.allocate_for(&mut svc, None).unwrap();
        let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.96.0."));
        assert_ne!(
            ip, "10.96.0.1",
            "the first address belongs to the kubernetes service"
        );
        let port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        let mut dup = json!({"spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
        let err = a.allocate_for(&mut dup, None).unwrap_err();
        assert!(err.detail.contains("already allocated"));
        let mut dup_port =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}});
        assert!(a.allocate_for(&mut dup_port, None).is_err());
        a.release(&svc);
        let mut again = json!({"spec": {"clusterIP": ip, "type": "NodePort", "ports": [{"port": 1, "nodePort": port}]}});
        a.allocate_for(&mut again, None).unwrap();
    }

    #[test]
    fn out_of_range_requests_are_invalid() {
        let a = ServiceAllocators::new(SERVICE_CIDR_DEFAULT).unwrap();
        let mut svc = json!({"spec": {"clusterIP": "192.168.0.1", "ports": []}});
        assert!(a
            .allocate_for(&mut svc, None)
            .unwrap_err()
            .detail
            .contains("valid range"));
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 1, "nodePort": 80}]}});
        assert!(a
            .allocate_for(&mut svc, None)
            .unwrap_err()
            .detail
            .contains("valid range"));
    }

    #[test]
    fn headless_and_external_name_take_no_ip() {
        let a = ServiceAllocators::new("10.0.0.0/29").unwrap();
        let mut headless = json!({"spec": {"clusterIP": "None", "ports": []}});
        a.allocate_for(&mut headless, None).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut ext = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
        a.allocate_for(&mut ext, None).unwrap();
        assert!(ext["spec"].get("clusterIP").is_none());
    }
}
