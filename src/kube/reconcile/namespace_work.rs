//! One namespace's Kubernetes work within a pass: apply its objects, write
//! its claim labels, verify Commander's permissions, list what a released
//! Deployment left. Each result is recorded as soon as it is had, so a pass
//! stopped anywhere resumes where it was on any replica.

use super::{KubeWorker, Outcome};
use crate::domain::commander_rules::{CheckPlan, Triple};
use crate::kube::client;
use crate::kube::objects;
use crate::store::{self, KubeWorkRow};
use futures::future::BoxFuture;
use serde_json::json;

impl KubeWorker {
    pub(super) async fn work_on(
        &self,
        row: KubeWorkRow,
        plan: &CheckPlan,
        fingerprint: &str,
    ) -> Result<Vec<Outcome>, client::Error> {
        let mut done = Vec::new();
        if row.needs_apply {
            self.kube
                .apply_rbac(&row.name, &self.target(), &self.namespace_objects())
                .await?;
            let generation = self
                .store
                .record_applied(self.cluster.id, &row.name, fingerprint)
                .await
                .map_err(store_failure)?;
            self.note(generation);
            done.push(Outcome::Applied);
        }
        if row.needs_labels || row.needs_pool_labels {
            let id = row.holder_deployment_id.map(|id| id.to_string());
            let holder = match (&row.holder_release, &id) {
                (Some(release), Some(id)) => Some((release.as_str(), id.as_str())),
                _ => None,
            };
            let pool_labels = self.claim_pool_labels();
            let written = self
                .kube
                .apply_claim_labels(&row.name, holder, pool_labels)
                .await;
            if let Err(client::Error::Api { code: 404, .. }) = &written
                && row.managed
            {
                // Gone behind nspool's back (a label write never creates
                // it): applied again in full on the next pass.
                self.store
                    .forget_applied(self.cluster.id, &row.name)
                    .await
                    .map_err(store_failure)?;
            }
            written?;
            self.store
                .record_labels(self.cluster.id, &row.name, row.holder_deployment_id)
                .await
                .map_err(store_failure)?;
            if !pool_labels.is_empty() {
                self.store
                    .record_pool_labels(
                        self.cluster.id,
                        &row.name,
                        &objects::labels_fingerprint(pool_labels),
                    )
                    .await
                    .map_err(store_failure)?;
            }
            done.push(Outcome::Labelled);
        }
        if row.needs_check {
            done.push(self.check(&row.name, plan).await?);
        }
        if row.needs_leftovers {
            // Lists only; what is found is the owner's (or Commander's) to remove.
            let left = self
                .kube
                .leftovers(&row.name, &self.settings.service.ignored_leftovers)
                .await?;
            let generation = self
                .store
                .record_leftovers(self.cluster.id, &row.name, &left)
                .await
                .map_err(store_failure)?;
            self.note(generation);
            done.push(Outcome::Released(left));
        }
        Ok(done)
    }

    /// Exists, and may the Commander account do every namespaced permission?
    async fn check(&self, name: &str, plan: &CheckPlan) -> Result<Outcome, client::Error> {
        let Some(labels) = self.kube.namespace_labels(name).await? else {
            let generation = self
                .store
                .record_check(self.cluster.id, name, "missing", &json!([]))
                .await
                .map_err(store_failure)?;
            self.note(generation);
            return Ok(Outcome::Checked {
                broken: None,
                missing: true,
                labels_missing: Vec::new(),
            });
        };
        let labels_missing = crate::domain::hygiene::missing_labels(
            &self.settings.service.pool_labels,
            Some(&labels),
        );
        self.store
            .record_labels_missing(self.cluster.id, name, &labels_missing)
            .await
            .map_err(store_failure)?;
        let (user, groups) = self.commander();
        let mut asks: Vec<BoxFuture<'_, (Triple, Result<bool, client::Error>)>> = Vec::new();
        for triple in &plan.namespaced {
            let (user, groups) = (&user, &groups);
            asks.push(Box::pin(async move {
                (
                    triple.clone(),
                    self.kube.can(user, groups, Some(name), triple).await,
                )
            }));
        }
        // Deduplicated triples; the client bounds the requests in flight.
        let answers = futures::future::join_all(asks).await;
        let mut denied = Vec::new();
        for (triple, answer) in answers {
            if !answer? {
                denied.push(triple.to_string());
            }
        }
        denied.sort();
        let state = if denied.is_empty() { "ok" } else { "broken" };
        let generation = self
            .store
            .record_check(self.cluster.id, name, state, &json!(denied))
            .await
            .map_err(store_failure)?;
        self.note(generation);
        Ok(Outcome::Checked {
            broken: (!denied.is_empty()).then_some(denied),
            missing: false,
            labels_missing,
        })
    }
}

/// A database failure in the middle of Kubernetes work: recorded like one,
/// so the namespace is retried.
fn store_failure(error: store::Error) -> client::Error {
    client::Error::Transport(format!("recording the result failed: {error}"))
}
