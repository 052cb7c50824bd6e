//! Crash-loop back-off: how long the kubelet waits before restarting a
//! container that exited.
//!
//! The first restart waits 10 s, each next one twice as long, up to 5 min.
//! A container that ran for twice that cap (10 min) since its last restart
//! before exiting is considered healthy again and starts over at 10 s.
//! Times are passed in, so the sequence is deterministic.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    delay: Duration,
    /// When the container was last let through (restarted).
    last_update: SystemTime,
}

/// Per-container back-off state, keyed by [`stable_key`].
#[derive(Debug, Clone)]
pub struct CrashLoopBackOff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for CrashLoopBackOff {
    fn default() -> Self {
        Self::new(INITIAL_BACKOFF, MAX_BACKOFF)
    }
}

/// `b - a`, or zero when `b` is earlier.
fn since(a: SystemTime, b: SystemTime) -> Duration {
    b.duration_since(a).unwrap_or(Duration::ZERO)
}

impl CrashLoopBackOff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        CrashLoopBackOff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// A container that stayed up this long after its last restart has
    /// recovered: its next crash starts the sequence over.
    fn expired(&self, entry: &Entry, event: SystemTime) -> bool {
        since(entry.last_update, event) > self.max * 2
    }

    /// The current delay for `key`, if it has one.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }

    /// If the container that exited at `finished_at` must still wait at
    /// `now`, the delay it waits out (for the CrashLoopBackOff message).
    pub fn in_back_off(
        &self,
        key: &str,
        finished_at: SystemTime,
        now: SystemTime,
    ) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if self.expired(entry, finished_at) {
            return None;
        }
        (since(finished_at, now) < entry.delay).then_some(entry.delay)
    }

    /// Records a restart at `now` of the container that exited at
    /// `finished_at`, doubling its delay (or starting over).
    pub fn next(&mut self, key: &str, finished_at: SystemTime, now: SystemTime) {
        let delay = match self.entries.get(key) {
            Some(e) if !self.expired(e, finished_at) => (e.delay * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// The whole decision for an exited container: `Err(delay)` while it
    /// must wait, else `Ok(())` with the restart recorded.
    pub fn check(
        &mut self,
        key: &str,
        finished_at: SystemTime,
        now: SystemTime,
    ) -> Result<(), Duration> {
        if let Some(delay) = self.in_back_off(key, finished_at, now) {
            return Err(delay);
        }
        self.next(key, finished_at, now);
        Ok(())
    }

    /// When the container that exited at `finished_at` may restart.
    pub fn retry_at(&self, key: &str, finished_at: SystemTime) -> Option<SystemTime> {
        self.entries.get(key).map(|e| finished_at + e.delay)
    }

    /// Forgets `key` (the pod was deleted).
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops entries that would have expired anyway, so the map does not
    /// grow with every container the node ever ran.
    pub fn gc(&mut self, now: SystemTime) {
        let max = self.max;
        self.entries
            .retain(|_, e| since(e.last_update, now) <= max * 2);
    }
}

/// 64-bit FNV-1a: small, stable across builds, enough to tell specs apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The back-off key of a container: the pod's identity, the container's
/// name and a hash of its spec, so that editing the container (a new image,
/// say) starts without back-off.
pub fn stable_key(pod: &Pod, container: &Container) -> String {
    let m = &pod.metadata;
    let spec = serde_json::to_vec(container).unwrap_or_default();
    format!(
        "{}_{}_{}_{}_{:x}",
        m.name.as_deref().unwrap_or(""),
        m.namespace.as_deref().unwrap_or(""),
        m.uid.as_deref().unwrap_or(""),
        container.name,
        fnv1a(&spec)
    )
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`, `1h0m0s`,
/// `500ms`), since upstream's messages embed Go's format.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    // Below a second Go switches to the largest unit under it, with a
    // fraction: `1.5ms`, `250µs`, `7ns`.
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", with_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", with_fraction(nanos, 1_000_000));
    }
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let secs = with_fraction(
        u128::from(s) * 1_000_000_000 + u128::from(d.subsec_nanos()),
        1_000_000_000,
    );
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

/// `n / unit` with its decimal fraction, trailing zeros dropped.
fn with_fraction(n: u128, unit: u128) -> String {
    let (whole, rest) = (n / unit, n % unit);
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let frac = format!("{rest:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// The waiting message of a container in CrashLoopBackOff.
pub fn crash_loop_message(delay: Duration, container: &str, pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "back-off {} restarting failed container={container} pod={}_{}({})",
        go_duration(delay),
        m.name.as_deref().unwrap_or(""),
        m.namespace.as_deref().unwrap_or(""),
        m.uid.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn doubling_sequence_with_cap() {
        let mut b = CrashLoopBackOff::default();
        // First exit: restarted at once, and the delay becomes 10 s.
        assert_eq!(b.check("k", at(0), at(0)), Ok(()));
        let mut now = 0;
        let mut seen = vec![];
        for _ in 0..8 {
            // Crashes a second after each restart.
            let finished = now + 1;
            let delay = b.check("k", at(finished), at(finished)).unwrap_err();
            seen.push(delay.as_secs());
            // Still waiting one second before the delay is over…
            let almost = finished + delay.as_secs() - 1;
            assert_eq!(b.check("k", at(finished), at(almost)), Err(delay));
            // …and let through once it is.
            now = finished + delay.as_secs();
            assert_eq!(b.check("k", at(finished), at(now)), Ok(()));
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn resets_after_ten_minutes_up() {
        let mut b = CrashLoopBackOff::default();
        b.next("k", at(0), at(0));
        b.next("k", at(5), at(20));
        assert_eq!(b.delay("k"), Some(Duration::from_secs(20)));
        // Ran exactly 10 minutes: not yet considered recovered.
        assert_eq!(
            b.in_back_off("k", at(620), at(620)),
            Some(Duration::from_secs(20))
        );
        // Ran longer: no back-off, and the next delay starts over.
        assert_eq!(b.in_back_off("k", at(621), at(621)), None);
        assert_eq!(b.check("k", at(621), at(621)), Ok(()));
        assert_eq!(b.delay("k"), Some(INITIAL_BACKOFF));
        assert_eq!(b.retry_at("k", at(700)), Some(at(710)));
    }

    #[test]
    fn unknown_keys_and_gc() {
        let mut b = CrashLoopBackOff::default();
        assert_eq!(b.in_back_off("new", at(0), at(0)), None);
        b.next("old", at(0), at(0));
        b.next("fresh", at(500), at(500));
        b.gc(at(601));
        assert_eq!(b.delay("old"), None);
        assert!(b.delay("fresh").is_some());
        b.remove("fresh");
        assert_eq!(b.delay("fresh"), None);
    }

    #[test]
    fn go_durations() {
        let s = Duration::from_secs;
        assert_eq!(go_duration(s(10)), "10s");
        assert_eq!(go_duration(s(80)), "1m20s");
        assert_eq!(go_duration(s(160)), "2m40s");
        assert_eq!(go_duration(s(300)), "5m0s");
        assert_eq!(go_duration(s(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_micros(250)), "250µs");
        assert_eq!(go_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(go_duration(Duration::from_millis(90_250)), "1m30.25s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn message_and_keys() {
        assert_eq!(
            crash_loop_message(Duration::from_secs(40), "app", &pod()),
            "back-off 40s restarting failed container=app pod=web_ns(u-1)"
        );
        let a = Container {
            name: "app".into(),
            image: Some("busybox:1".into()),
            ..Default::default()
        };
        let b = Container {
            image: Some("busybox:2".into()),
            ..a.clone()
        };
        assert_eq!(stable_key(&pod(), &a), stable_key(&pod(), &a.clone()));
        assert_ne!(stable_key(&pod(), &a), stable_key(&pod(), &b));
        assert!(stable_key(&pod(), &a).starts_with("web_ns_u-1_app_"));
    }
}
