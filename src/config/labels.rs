//! The labels every pool namespace carries, so the platform's logging,
//! metrics and secret sync find it as they find any Deployment namespace:
//! `global.namespaceLabels`, then Houston's
//! `astronomer.houston.config.deployments.namespaceLabels`, then
//! `platform-release: <nspool.platformRelease>` (which wins).

use super::reader::{At, Reader};
use crate::domain::hygiene::{PLATFORM_RELEASE_LABEL, check_label_key, check_label_value};
use serde_yaml::Value;
use std::collections::BTreeMap;

pub const DEFAULT_PLATFORM_RELEASE: &str = "astronomer";
/// Labels at most, over all sources (Kubernetes has no limit; this bounds the config).
const MAX_LABELS: usize = 64;

pub fn read(r: &mut Reader, root: &At<'_>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for at in [
        root.at("global.namespaceLabels"),
        root.at("astronomer.houston.config.deployments.namespaceLabels"),
    ] {
        read_map(r, &at, &mut labels);
    }
    let release_at = root.at("nspool.platformRelease");
    let release = r
        .string(&release_at)
        .unwrap_or_else(|| DEFAULT_PLATFORM_RELEASE.to_owned());
    match check_label_value(&release) {
        Ok(()) if !release.is_empty() => {
            labels.insert(PLATFORM_RELEASE_LABEL.to_owned(), release);
        }
        Ok(()) => r.error(&release_at, "the platform release name cannot be empty"),
        Err(reason) => r.error(&release_at, reason),
    }
    if labels.len() > MAX_LABELS {
        r.error(
            &root.at("global.namespaceLabels"),
            format!("{} namespace labels; at most {MAX_LABELS}", labels.len()),
        );
    }
    labels
}

fn read_map(r: &mut Reader, at: &At<'_>, into: &mut BTreeMap<String, String>) {
    let Some(value) = at.value else { return };
    let Some(map) = value.as_mapping() else {
        r.error(at, "expected a mapping of label keys to values");
        return;
    };
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            r.error(at, "label keys are strings");
            continue;
        };
        let item = at.key(key);
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => {
                r.error(&item, "a label value is a string");
                continue;
            }
        };
        if let Err(reason) = check_label_key(key).and_then(|()| check_label_value(&value)) {
            r.error(&item, reason);
            continue;
        }
        into.insert(key.to_owned(), value);
    }
}
