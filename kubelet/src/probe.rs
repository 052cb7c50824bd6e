//! Container probes (liveness, readiness, startup) as the kubelet runs
//! them: exec in the container, HTTP GET or a TCP connect to the pod, with
//! `initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`,
//! `successThreshold` and `failureThreshold` honoured. The worker asks
//! [`Prober::due`] each sync and feeds results back; the bookkeeping is
//! pure, the probing itself is IO.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{
    Container, ExecAction, HTTPGetAction, LifecycleHandler, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use runtime::types::ExecRequest;
use runtime::Runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

/// One probe's running state for one container instance.
#[derive(Debug, Clone, Default)]
struct State {
    last_run: Option<SystemTime>,
    successes: i32,
    failures: i32,
    /// The probe's verdict: `None` until it has one.
    result: Option<bool>,
}

/// Every probe of one pod, keyed by (container id, kind): a restarted
/// container starts with fresh state.
#[derive(Default)]
pub struct Prober {
    states: BTreeMap<(String, Kind), State>,
}

fn probe_of(c: &Container, kind: Kind) -> Option<&Probe> {
    match kind {
        Kind::Startup => c.startup_probe.as_ref(),
        Kind::Liveness => c.liveness_probe.as_ref(),
        Kind::Readiness => c.readiness_probe.as_ref(),
    }
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

impl Prober {
    /// The probes of `c` (running as `id` since `started`) that should run
    /// now, in order: startup first; liveness and readiness only once the
    /// startup probe (if any) has succeeded.
    pub fn due(
        &self,
        c: &Container,
        id: &str,
        started: SystemTime,
        now: SystemTime,
    ) -> Vec<(Kind, Probe)> {
        let mut out = Vec::new();
        let startup_done =
            c.startup_probe.is_none() || self.result(id, Kind::Startup) == Some(true);
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let Some(p) = probe_of(c, kind) else { continue };
            if kind == Kind::Startup && startup_done {
                continue;
            }
            if kind != Kind::Startup && !startup_done {
                continue;
            }
            if now < started + secs(p.initial_delay_seconds, 0) {
                continue;
            }
            let state = self.states.get(&(id.to_string(), kind));
            let period = secs(p.period_seconds, 10);
            if state
                .and_then(|s| s.last_run)
                .is_some_and(|t| now < t + period)
            {
                continue;
            }
            out.push((kind, p.clone()));
        }
        out
    }

    /// Records a probe's outcome; returns the verdict after thresholds.
    pub fn record(
        &mut self,
        id: &str,
        kind: Kind,
        probe: &Probe,
        ok: bool,
        now: SystemTime,
    ) -> Option<bool> {
        let s = self.states.entry((id.to_string(), kind)).or_default();
        s.last_run = Some(now);
        if ok {
            s.successes += 1;
            s.failures = 0;
            // Liveness and startup must succeed once.
            let needed = if kind == Kind::Readiness {
                probe.success_threshold.unwrap_or(1).max(1)
            } else {
                1
            };
            if s.successes >= needed {
                s.result = Some(true);
            }
        } else {
            s.failures += 1;
            s.successes = 0;
            if s.failures >= probe.failure_threshold.unwrap_or(3).max(1) {
                s.result = Some(false);
            }
        }
        s.result
    }

    pub fn result(&self, id: &str, kind: Kind) -> Option<bool> {
        self.states
            .get(&(id.to_string(), kind))
            .and_then(|s| s.result)
    }

    /// Forgets containers not in `live`.
    pub fn retain(&mut self, live: &[String]) {
        self.states.retain(|(id, _), _| live.contains(id));
    }
}

fn port_number(port: &IntOrString, c: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// What a probe or a lifecycle hook does.
pub struct Action<'a> {
    pub exec: Option<&'a ExecAction>,
    pub http_get: Option<&'a HTTPGetAction>,
    pub tcp_socket: Option<&'a TCPSocketAction>,
}

/// Runs one probe once; `true` is its success. `pod_ip` is where httpGet
/// and tcpSocket connect unless the probe names a host.
pub async fn run(probe: &Probe, c: &Container, id: &str, pod_ip: &str, rt: &dyn Runtime) -> bool {
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let action = Action {
        exec: probe.exec.as_ref(),
        http_get: probe.http_get.as_ref(),
        tcp_socket: probe.tcp_socket.as_ref(),
    };
    run_action(&action, c, id, pod_ip, rt, timeout).await
}

/// Runs a lifecycle hook (postStart, preStop) within `timeout`; `true` is
/// success. A `sleep` hook just waits.
pub async fn run_hook(
    hook: &LifecycleHandler,
    c: &Container,
    id: &str,
    pod_ip: &str,
    rt: &dyn Runtime,
    timeout: Duration,
) -> bool {
    if let Some(s) = &hook.sleep {
        let wait = Duration::from_secs(s.seconds.max(0) as u64).min(timeout);
        tokio::time::sleep(wait).await;
        return true;
    }
    let action = Action {
        exec: hook.exec.as_ref(),
        http_get: hook.http_get.as_ref(),
        tcp_socket: hook.tcp_socket.as_ref(),
    };
    run_action(&action, c, id, pod_ip, rt, timeout).await
}

pub async fn run_action(
    action: &Action<'_>,
    c: &Container,
    id: &str,
    pod_ip: &str,
    rt: &dyn Runtime,
    timeout: Duration,
) -> bool {
    let attempt = async {
        if let Some(exec) = action.exec {
            let request = ExecRequest {
                cmd: exec.command.clone().unwrap_or_default(),
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let Ok(mut s) = rt.exec(id, request).await else {
                return false;
            };
            // Drain output so the process never blocks on a full pipe.
            let (mut out, mut err) = (s.stdout.take(), s.stderr.take());
            let drain = async {
                let mut sink = Vec::new();
                if let Some(o) = out.as_mut() {
                    let _ = o.read_to_end(&mut sink).await;
                }
                if let Some(e) = err.as_mut() {
                    let _ = e.read_to_end(&mut sink).await;
                }
            };
            drain.await;
            return matches!(s.exit.await, Ok(0));
        }
        if let Some(http) = action.http_get {
            let Some(port) = port_number(&http.port, c) else {
                return false;
            };
            let host = http
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_string());
            let Ok(mut conn) = tokio::net::TcpStream::connect((host.as_str(), port)).await else {
                return false;
            };
            let path = http
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n");
            for h in http.http_headers.iter().flatten() {
                req.push_str(&format!("{}: {}\r\n", h.name, h.value));
            }
            req.push_str("\r\n");
            if conn.write_all(req.as_bytes()).await.is_err() {
                return false;
            }
            let mut head = [0u8; 64];
            let n = conn.read(&mut head).await.unwrap_or(0);
            let line = String::from_utf8_lossy(&head[..n]);
            // "HTTP/1.1 200 OK": 2xx and 3xx are success.
            return line
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok())
                .is_some_and(|code| (200..400).contains(&code));
        }
        if let Some(tcp) = action.tcp_socket {
            let Some(port) = port_number(&tcp.port, c) else {
                return false;
            };
            let host = tcp
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_string());
            return tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .is_ok();
        }
        // gRPC probes are not implemented yet: treated as failing.
        false
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(period: i32, failures: i32, successes: i32) -> Probe {
        Probe {
            period_seconds: Some(period),
            failure_threshold: Some(failures),
            success_threshold: Some(successes),
            initial_delay_seconds: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn thresholds_and_periods_are_honoured() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut c = Container {
            name: "c".into(),
            ..Default::default()
        };
        c.readiness_probe = Some(probe(5, 2, 2));
        let mut p = Prober::default();
        assert!(
            p.due(&c, "id", t0, t0 + Duration::from_secs(1)).is_empty(),
            "initial delay"
        );
        let due = p.due(&c, "id", t0, t0 + Duration::from_secs(2));
        assert_eq!(due.len(), 1);
        let pr = c.readiness_probe.clone().unwrap();
        assert_eq!(
            p.record(
                "id",
                Kind::Readiness,
                &pr,
                true,
                t0 + Duration::from_secs(2)
            ),
            None
        );
        assert!(
            p.due(&c, "id", t0, t0 + Duration::from_secs(4)).is_empty(),
            "period"
        );
        assert_eq!(
            p.record(
                "id",
                Kind::Readiness,
                &pr,
                true,
                t0 + Duration::from_secs(7)
            ),
            Some(true)
        );
        assert_eq!(
            p.record(
                "id",
                Kind::Readiness,
                &pr,
                false,
                t0 + Duration::from_secs(12)
            ),
            Some(true)
        );
        assert_eq!(
            p.record(
                "id",
                Kind::Readiness,
                &pr,
                false,
                t0 + Duration::from_secs(17)
            ),
            Some(false)
        );
        p.retain(&[]);
        assert_eq!(p.result("id", Kind::Readiness), None);
    }

    #[test]
    fn liveness_waits_for_the_startup_probe() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut c = Container {
            name: "c".into(),
            ..Default::default()
        };
        c.startup_probe = Some(probe(1, 3, 1));
        c.liveness_probe = Some(probe(1, 3, 1));
        let mut p = Prober::default();
        let now = t0 + Duration::from_secs(3);
        let kinds: Vec<Kind> = p
            .due(&c, "id", t0, now)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kinds, [Kind::Startup]);
        p.record(
            "id",
            Kind::Startup,
            c.startup_probe.as_ref().unwrap(),
            true,
            now,
        );
        let later = now + Duration::from_secs(1);
        let kinds: Vec<Kind> = p
            .due(&c, "id", t0, later)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kinds, [Kind::Liveness]);
    }
}
