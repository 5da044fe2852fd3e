//! The shape of a parsed document, measured in time linear in its size before
//! async-graphql validates it: each fragment is measured once (memoised), so a
//! chain of fragments that each spread the next twice costs its length, not
//! two to the power of its length. A document within these bounds has at most
//! [`MAX_FIELDS`] fields however its fragments expand, which in turn bounds
//! the work of every validation rule that follows.

use super::limits::{
    MAX_ALIASES, MAX_DEPTH, MAX_DIRECTIVES, MAX_FIELDS, MAX_FRAGMENTS, MAX_OPERATIONS,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "Query is too complex: more than {MAX_FIELDS} fields and fragment spreads once fragments are expanded"
    )]
    TooComplex,
    #[error("Query is nested too deep: more than {MAX_DEPTH} levels of selections")]
    TooDeep,
    #[error("The document has more than {MAX_OPERATIONS} operations")]
    TooManyOperations,
    #[error("The document has more than {MAX_FRAGMENTS} fragments")]
    TooManyFragments,
    #[error("The document has more than {MAX_ALIASES} aliases")]
    TooManyAliases,
    #[error("The document has more than {MAX_DIRECTIVES} directives")]
    TooManyDirectives,
    #[error("Fragment \"{0}\" spreads itself (directly or through other fragments)")]
    FragmentCycle(String),
}

/// Expanded size of a selection set: fields, and the deepest field nesting.
#[derive(Clone, Copy, Default)]
struct Measure {
    fields: usize,
    depth: usize,
}

enum Memo {
    InProgress,
    Done(Measure),
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    memo: HashMap<&'a str, Memo>,
}

/// Checks the counts and the expanded size of `document`.
pub fn check(document: &ExecutableDocument) -> Result<(), ShapeError> {
    if document.operations.iter().len() > MAX_OPERATIONS {
        return Err(ShapeError::TooManyOperations);
    }
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(ShapeError::TooManyFragments);
    }
    let mut walker = Walker {
        document,
        memo: HashMap::new(),
    };
    for name in document.fragments.keys() {
        walker.fragment(name.as_str())?;
    }
    let mut total = 0usize;
    for (_, operation) in document.operations.iter() {
        let measure = walker.selection_set(&operation.node.selection_set.node)?;
        total = total.saturating_add(measure.fields);
        if total > MAX_FIELDS {
            return Err(ShapeError::TooComplex);
        }
        if measure.depth > MAX_DEPTH {
            return Err(ShapeError::TooDeep);
        }
    }
    let mut counts = Counts::default();
    for (_, operation) in document.operations.iter() {
        counts.directives += operation.node.directives.len();
        counts.selection_set(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        counts.directives += fragment.node.directives.len();
        counts.selection_set(&fragment.node.selection_set.node);
    }
    if counts.aliases > MAX_ALIASES {
        return Err(ShapeError::TooManyAliases);
    }
    if counts.directives > MAX_DIRECTIVES {
        return Err(ShapeError::TooManyDirectives);
    }

    Ok(())
}

/// Aliases and directives as written (not expanded): a linear count.
#[derive(Default)]
struct Counts {
    aliases: usize,
    directives: usize,
}

impl Counts {
    fn selection_set(&mut self, set: &SelectionSet) {
        // Iterative: the scan has bounded nesting, but keep this pass flat anyway.
        let mut stack = vec![set];
        while let Some(set) = stack.pop() {
            for selection in &set.items {
                self.directives += selection.node.directives().len();
                match &selection.node {
                    Selection::Field(field) => {
                        self.aliases += usize::from(field.node.alias.is_some());
                        stack.push(&field.node.selection_set.node);
                    }
                    Selection::InlineFragment(inline) => {
                        stack.push(&inline.node.selection_set.node);
                    }
                    Selection::FragmentSpread(_) => {}
                }
            }
        }
    }
}

impl<'a> Walker<'a> {
    fn fragment(&mut self, name: &'a str) -> Result<Measure, ShapeError> {
        match self.memo.get(name) {
            Some(Memo::Done(measure)) => return Ok(*measure),
            Some(Memo::InProgress) => return Err(ShapeError::FragmentCycle(name.to_owned())),
            None => {}
        }
        // An unknown fragment is the validator's to report; it adds nothing here.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Measure::default());
        };
        self.memo.insert(name, Memo::InProgress);
        let measure = self.selection_set(&fragment.node.selection_set.node)?;
        self.memo.insert(name, Memo::Done(measure));
        Ok(measure)
    }

    /// Recursion here follows the document's nesting, which the scan bounds.
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<Measure, ShapeError> {
        let mut total = Measure::default();
        for selection in &set.items {
            let measure = match &selection.node {
                Selection::Field(field) => {
                    let inner = self.selection_set(&field.node.selection_set.node)?;
                    Measure {
                        fields: inner.fields.saturating_add(1),
                        depth: inner.depth + 1,
                    }
                }
                // A spread counts itself as well as what it expands to, so that
                // spreads of an unknown or empty fragment are not free.
                Selection::InlineFragment(inline) => {
                    let inner = self.selection_set(&inline.node.selection_set.node)?;
                    Measure {
                        fields: inner.fields.saturating_add(1),
                        depth: inner.depth,
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let inner = self.fragment(spread.node.fragment_name.node.as_str())?;
                    Measure {
                        fields: inner.fields.saturating_add(1),
                        depth: inner.depth,
                    }
                }
            };
            total.fields = total.fields.saturating_add(measure.fields);
            total.depth = total.depth.max(measure.depth);
            if total.fields > MAX_FIELDS {
                return Err(ShapeError::TooComplex);
            }
            if total.depth > MAX_DEPTH {
                return Err(ShapeError::TooDeep);
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn shape(document: &str) -> Result<(), ShapeError> {
        check(&parse_query(document).expect("parses"))
    }

    /// 28 fragments, each spreading the next twice: 2^28 fields expanded.
    fn doubling_chain(links: usize) -> String {
        let mut doc = String::from("{ ...F0 }\n");
        for i in 0..links {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        doc.push_str(&format!(
            "fragment F{links} on Query {{ appConfig {{ version }} }}"
        ));
        doc
    }

    #[test]
    fn ordinary_documents_pass() {
        assert_eq!(shape("{ appConfig { version } }"), Ok(()));
        assert_eq!(shape(&doubling_chain(3)), Ok(()));
    }

    #[test]
    fn exponential_fragments_are_measured_in_linear_time() {
        let started = std::time::Instant::now();
        assert_eq!(shape(&doubling_chain(28)), Err(ShapeError::TooComplex));
        assert_eq!(shape(&doubling_chain(60)), Err(ShapeError::TooComplex));
        // A chain that ends in a fragment that is not there costs as much.
        let broken = doubling_chain(28).replace("fragment F20 ", "fragment G20 ");
        assert_eq!(shape(&broken), Err(ShapeError::TooComplex));
        // Not a timing assertion on the result, only a guard against a hang.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn cycles_counts_and_depth_are_refused() {
        assert!(matches!(
            shape("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
            Err(ShapeError::FragmentCycle(_))
        ));
        let aliases = format!(
            "{{ {} }}",
            (0..=MAX_ALIASES)
                .map(|i| format!("a{i}: __typename"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(shape(&aliases), Err(ShapeError::TooManyAliases));
        let directives = format!("{{ a {} }}", "@skip(if: false) ".repeat(MAX_DIRECTIVES + 1));
        assert_eq!(shape(&directives), Err(ShapeError::TooManyDirectives));
        let deep = format!(
            "{}x{}",
            "{ a ".repeat(MAX_DEPTH + 1),
            " }".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(shape(&deep), Err(ShapeError::TooDeep));
        let fragments: String = (0..=MAX_FRAGMENTS)
            .map(|i| format!("fragment F{i} on Query {{ a }} "))
            .collect();
        assert_eq!(
            shape(&format!("{{ a }} {fragments}")),
            Err(ShapeError::TooManyFragments)
        );
    }
}
