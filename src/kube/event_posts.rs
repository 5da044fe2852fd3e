//! Posting the event log to Kubernetes as Events: the leader's Kubernetes
//! worker does it after each pass. A failure is recorded on the entry and
//! logged, never more: the operation it tells of is done already.

use super::client::KubeClient;
use super::events::{self, POSTED_KINDS};
use crate::store::{self, Store};

/// Entries posted per round (a pass posts until none is left).
const BATCH: i64 = 100;
/// Rounds per pass at most, so a flood never holds up the next pass.
const ROUNDS: usize = 10;

/// Posts what is due in `cluster` (its own client: an Event lands in the
/// cluster of its namespace); returns how many Events were posted.
pub async fn post_due(
    store: &Store,
    cluster: uuid::Uuid,
    kube: &KubeClient,
    instance: &str,
) -> Result<usize, store::Error> {
    let mut posted = 0;
    for _ in 0..ROUNDS {
        let due = store.events_to_post(cluster, &POSTED_KINDS, BATCH).await?;
        if due.is_empty() {
            break;
        }
        for entry in &due {
            let Some(story) = events::story(entry) else {
                // Not an Event (a check that found no namespace): done with it.
                store.record_event_post(entry.id, None).await?;
                continue;
            };
            let object = events::object(entry, &story, instance);
            match kube.post_event(&object).await {
                Ok(()) => {
                    posted += 1;
                    store.record_event_post(entry.id, None).await?;
                }
                Err(error) => {
                    tracing::warn!(
                        namespace = %entry.namespace,
                        reason = story.reason,
                        %error,
                        "could not post a Kubernetes Event (the operation itself is done; see docs/operations.md, Kubernetes Events)"
                    );
                    store
                        .record_event_post(entry.id, Some(&error.to_string()))
                        .await?;
                }
            }
        }
        if due.len() < BATCH as usize {
            break;
        }
    }
    store.forget_old_event_posts().await?;
    Ok(posted)
}
