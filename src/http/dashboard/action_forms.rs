//! The system admin's forms on the dashboard (plain POSTs to `/actions`,
//! each with the session's CSRF token) and the line that says what the last
//! one did. Viewers and editors get none of them.

use crate::pool::Cordon;
use crate::pool::{PoolNamespaceState, PoolNamespaceView};
use maud::{Markup, html};

/// What an action did, shown once back on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    action: &'static str,
    name: String,
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
        Some(Done { action, name })
    }

    /// Where the dashboard shows it: the namespace's row.
    pub fn link(&self) -> String {
        if self.name.is_empty() {
            format!("/?done={}", self.action)
        } else {
            format!("/?done={}&ns={}#ns-{}", self.action, self.name, self.name)
        }
    }

    pub fn sentence(&self) -> String {
        let words = ACTIONS
            .iter()
            .find(|(a, _)| *a == self.action)
            .map_or("Done", |(_, words)| words);
        if self.name.is_empty() {
            format!("{words}.")
        } else {
            format!("{words}: {}.", self.name)
        }
    }
}

fn hidden(csrf: &str, action: &str, name: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="action" value=(action);
        input type="hidden" name="name" value=(name);
    }
}

/// Per namespace: cordon (with a reason) or uncordon; mark clean when releasing.
pub fn namespace_actions(view: &PoolNamespaceView, csrf: &str) -> Markup {
    let name = view.name.as_str();
    html! {
        @if view.cordon.is_some() {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "uncordon", name))
                button type="submit" id=(format!("uncordon-{name}")) { "Uncordon" }
            }
        } @else if view.state != PoolNamespaceState::Retired {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "cordon", name))
                input type="text" name="reason" required maxlength="1024" placeholder="why cordon"
                    aria-label=(format!("reason to cordon {name}")) id=(format!("cordon-reason-{name}"));
                button type="submit" id=(format!("cordon-{name}")) { "Cordon" }
            }
        }
        @if view.state == PoolNamespaceState::Releasing {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "mark-clean", name))
                input type="text" name="reason" required maxlength="1024" placeholder="why it is clean"
                    aria-label=(format!("reason {name} is clean"));
                button type="submit" { "Mark clean" }
            }
        }
    }
}

/// The whole pool: cordon with a reason, or open it again.
pub fn pool_actions(cordon: Option<&Cordon>, csrf: &str) -> Markup {
    html! {
        @if cordon.is_some() {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "uncordon-pool", ""))
                button type="submit" id="uncordon-pool" { "Uncordon the pool" }
            }
        } @else {
            form class="action" method="post" action="/actions" {
                (hidden(csrf, "cordon-pool", ""))
                input type="text" name="reason" required maxlength="1024" placeholder="why no claims"
                    aria-label="reason to cordon the whole pool";
                button type="submit" id="cordon-pool" { "Cordon the whole pool" }
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
}
