//! The system admin's forms on the dashboard (plain POSTs to `/actions`,
//! each with the session's CSRF token) and the line that says what the last
//! one did. Viewers and editors get none of them.

use crate::pool::Cordon;
use crate::pool::{PoolNamespaceState, PoolNamespaceView};
use maud::{Markup, html};
use uuid::Uuid;

/// How the page names a namespace in its element ids and anchors: its name,
/// or with several clusters `<cluster>_<name>` (`_` is in no cluster's and no
/// namespace's name, so one name in two clusters gives two keys).
pub fn namespace_key(cluster: Option<&str>, name: &str) -> String {
    match cluster {
        None => name.to_owned(),
        Some(cluster) => format!("{cluster}_{name}"),
    }
}

/// The cluster a form acts in (with several), as its hidden input says it.
#[derive(Debug, Clone, Copy)]
pub struct InCluster<'a> {
    pub id: Uuid,
    pub name: &'a str,
}

/// What an action did, shown once back on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    action: &'static str,
    name: String,
    /// The cluster it was done in (with several): its id and name, from the config.
    cluster: Option<(Uuid, String)>,
}

const ACTIONS: [(&str, &str); 5] = [
    ("cordon", "Cordoned"),
    ("uncordon", "Uncordoned"),
    ("mark-clean", "Marked clean (offered again)"),
    ("cordon-pool", "The pool is cordoned"),
    ("uncordon-pool", "The pool is open again"),
];

impl Done {
    /// Only nspool's own actions, and only a namespace name's characters:
    /// a crafted link cannot put words on the page.
    pub fn parse(action: &str, name: &str) -> Option<Done> {
        let (action, _) = ACTIONS.iter().find(|(a, _)| *a == action)?;
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .take(63)
            .collect();
        Some(Done {
            action,
            name,
            cluster: None,
        })
    }

    /// Done in the cluster `id` named `name` (one of the config's, never
    /// words from the request).
    pub fn in_cluster(self, id: Uuid, name: &str) -> Done {
        Done {
            cluster: Some((id, name.to_owned())),
            ..self
        }
    }

    /// Where the dashboard shows it: the namespace's row (with several
    /// clusters, on the page of its cluster).
    pub fn link(&self) -> String {
        let shown = match &self.cluster {
            None => String::new(),
            Some((id, _)) => format!("cluster={id}&"),
        };
        if self.name.is_empty() {
            format!("/?{shown}done={}", self.action)
        } else {
            let key = namespace_key(self.cluster.as_ref().map(|(_, n)| n.as_str()), &self.name);
            format!("/?{shown}done={}&ns={}#ns-{key}", self.action, self.name)
        }
    }

    pub fn sentence(&self) -> String {
        let words = ACTIONS
            .iter()
            .find(|(a, _)| *a == self.action)
            .map_or("Done", |(_, words)| words);
        let sentence = if self.name.is_empty() {
            words.to_owned()
        } else {
            format!("{words}: {}", self.name)
        };
        match &self.cluster {
            None => format!("{sentence}."),
            Some((_, cluster)) => format!("{sentence} (cluster {cluster})."),
        }
    }
}

/// The form's fixed fields; with several clusters, the cluster it acts in
/// (the same name may be in two clusters: the id says which).
fn hidden(csrf: &str, action: &str, name: &str, cluster: Option<InCluster<'_>>) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="action" value=(action);
        input type="hidden" name="name" value=(name);
        @if let Some(cluster) = cluster {
            input type="hidden" name="cluster" value=(cluster.id);
        }
    }
}

/// Per namespace: cordon (with a reason) or uncordon; mark clean when
/// releasing. `cluster`: with several clusters, the namespace's (its element
/// ids then carry the cluster's name: [`namespace_key`]).
pub fn namespace_actions(
    view: &PoolNamespaceView,
    csrf: &str,
    cluster: Option<InCluster<'_>>,
) -> Markup {
    let name = view.name.as_str();
    let key = namespace_key(cluster.map(|c| c.name), name);
    let shown = match cluster {
        None => name.to_owned(),
        Some(cluster) => format!("{name} in {}", cluster.name),
    };
    html! {
        @if view.cordon.is_some() {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "uncordon", name, cluster))
                button type="submit" id=(format!("uncordon-{key}")) { "Uncordon" }
            }
        } @else if view.state != PoolNamespaceState::Retired {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "cordon", name, cluster))
                input type="text" name="reason" required maxlength="1024" placeholder="why cordon"
                    aria-label=(format!("reason to cordon {shown}")) id=(format!("cordon-reason-{key}"));
                button type="submit" id=(format!("cordon-{key}")) { "Cordon" }
            }
        }
        @if view.state == PoolNamespaceState::Releasing {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "mark-clean", name, cluster))
                input type="text" name="reason" required maxlength="1024" placeholder="why it is clean"
                    aria-label=(format!("reason {shown} is clean"));
                button type="submit" { "Mark clean" }
            }
        }
    }
}

/// The whole pool (with several clusters, `cluster`'s pool): cordon with a
/// reason, or open it again.
pub fn pool_actions(cordon: Option<&Cordon>, csrf: &str, cluster: Option<InCluster<'_>>) -> Markup {
    let suffix = cluster.map_or(String::new(), |c| format!("-{}", c.name));
    let whole = match cluster {
        None => "the whole pool".to_owned(),
        Some(cluster) => format!("the pool of cluster {}", cluster.name),
    };
    html! {
        @if cordon.is_some() {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "uncordon-pool", "", cluster))
                button type="submit" id=(format!("uncordon-pool{suffix}")) {
                    @if cluster.is_some() { "Uncordon" } @else { "Uncordon the pool" }
                }
            }
        } @else {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "cordon-pool", "", cluster))
                input type="text" name="reason" required maxlength="1024" placeholder="why no claims"
                    aria-label=(format!("reason to cordon {whole}"))
                    id=[cluster.map(|c| format!("cordon-pool-reason-{}", c.name))];
                // In a cluster's row of the summary, whose column says "pool cordon".
                button type="submit" id=(format!("cordon-pool{suffix}")) {
                    @if cluster.is_some() { "Cordon" } @else { "Cordon the whole pool" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_actions_and_name_characters_come_back() {
        assert_eq!(Done::parse("drop-tables", "x"), None);
        let done = Done::parse("cordon", "team-a<script>").unwrap();
        assert_eq!(done.sentence(), "Cordoned: team-ascript.");
        assert_eq!(done.link(), "/?done=cordon&ns=team-ascript#ns-team-ascript");
        assert_eq!(
            Done::parse("cordon-pool", "").unwrap().link(),
            "/?done=cordon-pool"
        );
    }

    #[test]
    fn with_several_clusters_the_link_and_sentence_name_the_cluster() {
        let id = Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap();
        let done = Done::parse("cordon", "team-a")
            .unwrap()
            .in_cluster(id, "prod");
        assert_eq!(
            done.link(),
            format!("/?cluster={id}&done=cordon&ns=team-a#ns-prod_team-a")
        );
        assert_eq!(done.sentence(), "Cordoned: team-a (cluster prod).");
        let pool = Done::parse("cordon-pool", "")
            .unwrap()
            .in_cluster(id, "prod");
        assert_eq!(pool.link(), format!("/?cluster={id}&done=cordon-pool"));
        assert_eq!(pool.sentence(), "The pool is cordoned (cluster prod).");
    }
}
