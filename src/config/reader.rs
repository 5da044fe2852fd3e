//! Reading a YAML tree key by key, so that every error names the key it is
//! about (`global.features.namespacePools.enabled: expected true or false`).

use serde_yaml::Value;
use std::fmt;

/// One problem in the config, named by its dotted key (or environment variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// A position in the tree: the dotted path and the value there, if any.
/// A YAML `null` counts as absent, as Helm treats it.
#[derive(Clone)]
pub struct At<'a> {
    pub value: Option<&'a Value>,
    pub path: String,
}

/// Collects every error and warning of one read, so `config check` shows all.
#[derive(Default)]
pub struct Reader {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
}

impl<'a> At<'a> {
    pub fn root(value: &'a Value) -> Self {
        At {
            value: Some(value),
            path: String::new(),
        }
    }

    pub fn key(&self, key: &str) -> At<'a> {
        let value = self
            .value
            .and_then(Value::as_mapping)
            .and_then(|m| m.get(key))
            .filter(|v| !v.is_null());
        let path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        };
        At { value, path }
    }

    /// Follows a dotted path of plain keys.
    pub fn at(&self, dotted: &str) -> At<'a> {
        dotted.split('.').fold(self.clone(), |at, key| at.key(key))
    }

    pub fn present(&self) -> bool {
        self.value.is_some()
    }
}

impl Reader {
    pub fn error(&mut self, at: &At<'_>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            key: at.path.clone(),
            reason: reason.into(),
        });
    }

    pub fn bool(&mut self, at: &At<'_>, default: bool) -> bool {
        match at.value {
            None => default,
            Some(Value::Bool(b)) => *b,
            // Helm values are often written as strings; accept the two obvious ones.
            Some(Value::String(s)) if s == "true" => true,
            Some(Value::String(s)) if s == "false" => false,
            Some(other) => {
                self.error(
                    at,
                    format!("expected true or false, found {}", describe(other)),
                );
                default
            }
        }
    }

    pub fn string(&mut self, at: &At<'_>) -> Option<String> {
        match at.value {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                self.error(at, format!("expected a string, found {}", describe(other)));
                None
            }
        }
    }

    pub fn u32(&mut self, at: &At<'_>, default: u32) -> u32 {
        match at.value {
            None => default,
            Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => n,
                None => {
                    self.error(
                        at,
                        format!("expected a whole number of at least 0, found {n}"),
                    );
                    default
                }
            },
            Some(Value::String(s)) => match s.parse() {
                Ok(n) => n,
                Err(_) => {
                    self.error(at, format!("expected a whole number, found \"{s}\""));
                    default
                }
            },
            Some(other) => {
                self.error(
                    at,
                    format!("expected a whole number, found {}", describe(other)),
                );
                default
            }
        }
    }

    /// The items of a list, each with its index in the path (`names[2]`).
    pub fn list<'a>(&mut self, at: &At<'a>) -> Vec<(String, &'a Value)> {
        match at.value {
            None => Vec::new(),
            Some(Value::Sequence(items)) => {
                let path = &at.path;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}[{i}]"), v))
                    .collect()
            }
            Some(other) => {
                self.error(at, format!("expected a list, found {}", describe(other)));
                Vec::new()
            }
        }
    }

    /// Warns about keys of a mapping that nspool does not know (each with a
    /// "did you mean" when one known key is close).
    pub fn warn_unknown(&mut self, at: &At<'_>, known: &[&str]) {
        for name in self.unknown_names(at, known, &[]) {
            let hint = super::suggest::hint(&name, known);
            self.warnings.push(format!(
                "{}.{name}: unknown key, ignored{hint} (known here: {})",
                at.path,
                known.join(", ")
            ));
        }
    }

    /// Refuses keys of a mapping that are neither read (`known`) nor left
    /// alone on purpose (`accepted`: another component's settings): where a
    /// misspelt key would silently change the pool, a typo must stop the
    /// file, not be skipped. The "did you mean" looks at both lists.
    pub fn refuse_unknown(&mut self, at: &At<'_>, known: &[&str], accepted: &[&str]) {
        let candidates: Vec<&str> = known.iter().chain(accepted).copied().collect();
        for name in self.unknown_names(at, known, accepted) {
            let hint = super::suggest::hint(&name, &candidates);
            let also = if accepted.is_empty() {
                String::new()
            } else {
                "; the platform's other settings here are accepted as they are".into()
            };
            self.errors.push(ConfigError {
                key: format!("{}.{name}", at.path),
                reason: format!(
                    "unknown key{hint} (nspool reads {} here{also})",
                    known.join(", ")
                ),
            });
        }
    }

    /// The keys of the mapping at `at` in neither list (an error if `at` is
    /// not a mapping at all).
    fn unknown_names(&mut self, at: &At<'_>, known: &[&str], accepted: &[&str]) -> Vec<String> {
        let Some(Value::Mapping(map)) = at.value else {
            if let Some(other) = at.value {
                self.error(at, format!("expected a mapping, found {}", describe(other)));
            }
            return Vec::new();
        };
        map.keys()
            .map(|key| key.as_str().unwrap_or("<non-string key>").to_owned())
            .filter(|name| !known.contains(&name.as_str()) && !accepted.contains(&name.as_str()))
            .collect()
    }
}

pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}
