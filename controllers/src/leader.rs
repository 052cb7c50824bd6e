//! Leader election on a `coordination.k8s.io/v1` Lease, so several
//! servers can run the controller-manager and the scheduler with one
//! active copy of each. The holder renews the Lease every few seconds; a
//! Lease not renewed within its duration may be taken over. Work runs only
//! while the Lease is held and is stopped as soon as a renewal fails.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

/// Whether `spec` lets `identity` hold the lease at `now`.
pub fn may_hold(spec: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == identity {
        return true;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    match spec.renew_time.as_ref() {
        Some(MicroTime(renewed)) => *renewed + duration < now,
        None => true,
    }
}

/// Whether a lease `spec` is held by a live holder at `now` (for health).
pub fn is_fresh(spec: &LeaseSpec, now: Timestamp) -> bool {
    !spec.holder_identity.as_deref().unwrap_or("").is_empty() && !may_hold(spec, "", now)
}

#[derive(Clone)]
pub struct LeaderElection {
    pub client: kube::Client,
    pub namespace: String,
    /// The Lease's name: `kube-controller-manager`, `kube-scheduler`.
    pub name: String,
    /// This process's identity (host name and a unique suffix).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_interval: Duration,
}

impl LeaderElection {
    pub fn new(client: kube::Client, name: &str, identity: &str) -> LeaderElection {
        LeaderElection {
            client,
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(2),
        }
    }

    /// Takes or renews the Lease; `Ok(false)` when another holder has it.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let now = Timestamp::now();
        let existing = api.get_opt(&self.name).await?;
        let mut lease = existing.clone().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec::default()),
        });
        let spec = lease.spec.get_or_insert_with(Default::default);
        if !may_hold(spec, &self.identity, now) {
            return Ok(false);
        }
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(-1) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.lease_duration.as_secs() as i32);
        let written = match existing {
            None => api.create(&PostParams::default(), &lease).await,
            // The resourceVersion makes this a compare-and-swap: a rival
            // that wrote in between makes it a 409, and we are not leader.
            Some(_) => {
                api.replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs `work` whenever this process leads, until the process ends.
    pub async fn run<F, Fut>(self, work: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            while !matches!(self.try_acquire_or_renew().await, Ok(true)) {
                tokio::time::sleep(self.renew_interval).await;
            }
            tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
            let task = tokio::spawn(work());
            let mut last_renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(self.renew_interval).await;
                match self.try_acquire_or_renew().await {
                    Ok(true) => last_renewed = tokio::time::Instant::now(),
                    Ok(false) => break,
                    // A failed renewal is retried until the lease would
                    // have expired for the others.
                    Err(e) if last_renewed.elapsed() < self.lease_duration * 2 / 3 => {
                        tracing::warn!(lease = %self.name, "renewing: {e}");
                    }
                    Err(_) => break,
                }
            }
            tracing::warn!(lease = %self.name, "lost the lease; stopping");
            task.abort();
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_secs_ago: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(
                Timestamp::now() - SignedDuration::from_secs(renewed_secs_ago),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn a_live_lease_belongs_to_its_holder_until_it_expires() {
        let now = Timestamp::now();
        assert!(!may_hold(&spec("a", 5), "b", now));
        assert!(may_hold(&spec("a", 5), "a", now));
        assert!(may_hold(&spec("a", 20), "b", now));
        assert!(may_hold(&LeaseSpec::default(), "b", now));
        assert!(is_fresh(&spec("a", 5), now));
        assert!(!is_fresh(&spec("a", 20), now));
        assert!(!is_fresh(&LeaseSpec::default(), now));
    }
}
