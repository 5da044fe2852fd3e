//! What nspool tells Kubernetes about a pool namespace: an Event
//! (events.k8s.io/v1) for each entry of its own event log that changed the
//! namespace's story, so `kubectl events -n <ns>` reads it. Pure: the log
//! entry in, the Event object out.

use crate::store::LoggedEvent;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

/// `reportingController` of every Event nspool posts.
pub const REPORTING_CONTROLLER: &str = "nspool";
/// Kubernetes refuses a longer note.
const NOTE_BYTES: usize = 1024;

/// The event log's kinds that become Events (the rest are not about a
/// namespace's story: workspace and token changes, say).
pub const POSTED_KINDS: [&str; 13] = [
    "claim",
    "adopt",
    "soft_delete",
    "release",
    "reclaim",
    "clean",
    "mark_clean",
    "leftovers",
    "rbac_check",
    "cordon",
    "uncordon",
    "retire",
    "drift",
];

/// One Event's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Story {
    /// CamelCase, what happened.
    pub reason: &'static str,
    /// CamelCase, what nspool did.
    pub action: &'static str,
    pub warning: bool,
    pub note: String,
}

fn normal(reason: &'static str, action: &'static str, note: String) -> Option<Story> {
    Some(Story {
        reason,
        action,
        warning: false,
        note,
    })
}

/// The words for one log entry; `None` for entries that are no Event (an
/// RBAC check that found the namespace missing has nowhere to post).
pub fn story(event: &LoggedEvent) -> Option<Story> {
    let release = event.release_name.as_deref().unwrap_or("?");
    let why = event.reason.as_deref().unwrap_or("");
    let by = &event.actor;
    match event.kind.as_str() {
        "claim" => normal(
            "Claimed",
            "Claim",
            format!("Claimed by Deployment {release} ({by})"),
        ),
        "adopt" => normal(
            "Adopted",
            "Adopt",
            format!("Deployment {release} already used this namespace when it joined the pool"),
        ),
        "soft_delete" => normal(
            "HolderSoftDeleted",
            "Release",
            format!(
                "Deployment {release} was soft-deleted ({by}); it keeps the namespace until it is hard-deleted or reclaimed"
            ),
        ),
        "release" => normal(
            "Released",
            "Release",
            format!("Released: Deployment {release} was hard-deleted ({by})"),
        ),
        "reclaim" => normal(
            "Reclaimed",
            "Reclaim",
            format!(
                "Released by the reclaim job: Deployment {release} was soft-deleted long enough"
            ),
        ),
        "clean" => normal(
            "FoundClean",
            "CheckLeftovers",
            format!("Found clean: {why}"),
        ),
        "mark_clean" => normal(
            "MarkedClean",
            "MarkClean",
            format!("Marked clean by {by}, offered again: {why}"),
        ),
        "leftovers" => Some(Story {
            reason: "LeftoversFound",
            action: "CheckLeftovers",
            warning: true,
            note: format!(
                "{}; remove them, or mark the namespace clean",
                capitalized(why)
            ),
        }),
        "rbac_check" if why == "ok" => {
            let repaired =
                matches!(event.previous_reason.as_deref(), Some(p) if p.starts_with("broken"));
            if repaired {
                normal(
                    "RBACRepaired",
                    "VerifyRBAC",
                    "Commander's permissions are complete again: offered when free".into(),
                )
            } else {
                normal(
                    "RBACVerified",
                    "VerifyRBAC",
                    "Commander's permissions are complete".into(),
                )
            }
        }
        "rbac_check" if why.starts_with("broken") => Some(Story {
            reason: "RBACBroken",
            action: "VerifyRBAC",
            warning: true,
            note: format!("Not offered: Commander's Role is incomplete ({why})"),
        }),
        "cordon" => normal("Cordoned", "Cordon", format!("Cordoned by {by}: {why}")),
        "uncordon" => normal(
            "Uncordoned",
            "Uncordon",
            format!("Uncordoned by {by} ({why})"),
        ),
        "retire" => normal(
            "RemovedFromPool",
            "Retire",
            "Removed from the pool config: never offered again, never deleted".into(),
        ),
        // `why`: what was found, "Role/deployment-commander-role deleted".
        "drift" => Some(Story {
            reason: "DriftDetected",
            action: "ApplyRBAC",
            warning: true,
            note: format!(
                "{} out of band: nspool applies it again (not offered while free until then)",
                capitalized(why)
            ),
        }),
        _ => None,
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Cut on a character boundary to what Kubernetes keeps; bidirectional
/// controls (in text stored before nspool refused them) shown as `<U+202E>`.
fn note(text: &str) -> String {
    let text = &*crate::domain::text::visible(text);
    if text.len() <= NOTE_BYTES {
        return text.to_owned();
    }
    let mut end = NOTE_BYTES - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The Event for `event` in its namespace, reported by `instance` (this
/// replica). Its name comes from the log entry (id and time), so posting it
/// twice is refused as a duplicate rather than told twice.
pub fn object(event: &LoggedEvent, story: &Story, instance: &str) -> Event {
    let namespace = event.namespace.clone();
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(&namespace, event.id, event.at)),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        // Kubernetes keeps microseconds; the log entry's time always fits.
        event_time: k8s_openapi::jiff::Timestamp::from_microsecond(event.at.timestamp_micros())
            .ok()
            .map(MicroTime),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.chars().take(128).collect()),
        action: Some(story.action.into()),
        reason: Some(story.reason.into()),
        note: Some(note(&story.note)),
        type_: Some(if story.warning { "Warning" } else { "Normal" }.into()),
        // A Namespace is cluster-scoped, but an Event outside `default` or
        // `kube-system` must name a namespace for what it regards: the
        // namespace itself, which is also where `kubectl events -n` looks.
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
            name: Some(namespace.clone()),
            namespace: Some(namespace),
            ..ObjectReference::default()
        }),
        ..Event::default()
    }
}

/// `<namespace>.nspool-<id>-<microseconds>`, in hex: a DNS subdomain (a
/// namespace name is at most 63 characters), unique per log entry even
/// when a new database starts its ids again.
fn event_name(namespace: &str, id: i64, at: DateTime<Utc>) -> String {
    format!("{namespace}.nspool-{id:x}-{:x}", at.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn logged(kind: &str, reason: Option<&str>, previous: Option<&str>) -> LoggedEvent {
        LoggedEvent {
            id: 42,
            at: Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap(),
            kind: kind.into(),
            namespace: "team-a".into(),
            release_name: Some("stellar-orbit-1234".into()),
            actor: "token:ci".into(),
            reason: reason.map(Into::into),
            previous_reason: previous.map(Into::into),
        }
    }

    #[test]
    fn a_note_shows_bidi_controls_as_what_they_are() {
        let told = story(&logged("cordon", Some("ok\u{202E}gnp.exe"), None)).unwrap();
        let note = note(&told.note);
        assert!(
            !note.chars().any(crate::domain::text::is_bidi_control),
            "{note}"
        );
        assert!(note.contains("ok<U+202E>gnp.exe"), "{note}");
    }

    #[test]
    fn each_posted_kind_tells_a_story_in_camel_case() {
        for kind in POSTED_KINDS {
            let reason = match kind {
                "rbac_check" => Some("ok"),
                _ => Some("because"),
            };
            let story = story(&logged(kind, reason, None)).unwrap_or_else(|| panic!("{kind}"));
            assert!(
                story
                    .reason
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
            );
            assert!(
                story.reason.chars().all(|c| c.is_ascii_alphanumeric()),
                "{kind}"
            );
            assert!(!story.note.is_empty());
        }
        assert_eq!(story(&logged("workspace_create", None, None)), None);
        assert_eq!(story(&logged("rbac_check", Some("missing"), None)), None);
    }

    #[test]
    fn rbac_repaired_follows_broken_and_broken_is_a_warning() {
        let broken = story(&logged(
            "rbac_check",
            Some("broken: cannot create pods"),
            Some("ok"),
        ))
        .unwrap();
        assert_eq!((broken.reason, broken.warning), ("RBACBroken", true));
        let repaired = story(&logged("rbac_check", Some("ok"), Some("broken: cannot x"))).unwrap();
        assert_eq!(repaired.reason, "RBACRepaired");
        let first = story(&logged("rbac_check", Some("ok"), None)).unwrap();
        assert_eq!(first.reason, "RBACVerified");
    }

    #[test]
    fn the_object_is_what_the_api_server_accepts() {
        let event = logged("cordon", Some(&"é".repeat(2000)), None);
        let story = story(&event).unwrap();
        let object = object(&event, &story, "replica-1");
        let name = object.metadata.name.clone().unwrap();
        assert!(name.starts_with("team-a.nspool-2a-"), "{name}");
        assert!(name.len() <= 253);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        );
        assert!(object.note.as_ref().unwrap().len() <= NOTE_BYTES);
        assert_eq!(object.reporting_controller.as_deref(), Some("nspool"));
        assert_eq!(object.type_.as_deref(), Some("Normal"));
        let regarding = object.regarding.unwrap();
        assert_eq!(regarding.namespace.as_deref(), Some("team-a"));
        assert_eq!(regarding.kind.as_deref(), Some("Namespace"));
    }
}
