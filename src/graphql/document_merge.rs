//! GraphQL's field collection, done once on the document before it runs: in
//! one selection set, fields with the same response key, name and arguments
//! are one field whose selections are the union of theirs (the spec's
//! CollectFields and MergeSelectionSets), the same fragment spread twice is
//! one spread, and inline fragments on the same type are one. async-graphql
//! would run each copy's resolver and keep one answer; after this a document
//! costs what its distinct work costs. The answer is the same either way.
//!
//! Only selections without directives are merged (`@skip`/`@include` decide
//! per copy); fields that share a response key but not their name or
//! arguments are left for validation to refuse. Linear in the document:
//! every selection is hashed once per set it ends up in.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use std::collections::HashMap;

/// Merges every selection set of `document` in place.
pub fn merge(document: &mut ExecutableDocument) {
    match &mut document.operations {
        DocumentOperations::Single(operation) => {
            merge_set(&mut operation.node.selection_set.node);
        }
        DocumentOperations::Multiple(operations) => {
            for operation in operations.values_mut() {
                merge_set(&mut operation.node.selection_set.node);
            }
        }
    }
    for fragment in document.fragments.values_mut() {
        merge_set(&mut fragment.node.selection_set.node);
    }
}

#[derive(Hash, PartialEq, Eq)]
enum Key {
    Field(String),
    Spread(String),
    Inline(Option<String>),
}

fn key(selection: &Selection) -> Option<Key> {
    if !selection.directives().is_empty() {
        return None;
    }
    Some(match selection {
        Selection::Field(field) => {
            let field = &field.node;
            let mut key = format!("{}:{}", field.response_key().node, field.name.node);
            for (name, value) in &field.arguments {
                key.push_str(&format!(" {}={}", name.node, value.node));
            }
            Key::Field(key)
        }
        Selection::FragmentSpread(spread) => {
            Key::Spread(spread.node.fragment_name.node.to_string())
        }
        Selection::InlineFragment(inline) => Key::Inline(
            inline
                .node
                .type_condition
                .as_ref()
                .map(|t| t.node.on.node.to_string()),
        ),
    })
}

/// The selections nested under `selection`, if it has any.
fn children(selection: &mut Selection) -> Option<&mut SelectionSet> {
    match selection {
        Selection::Field(field) => Some(&mut field.node.selection_set.node),
        Selection::InlineFragment(inline) => Some(&mut inline.node.selection_set.node),
        Selection::FragmentSpread(_) => None,
    }
}

fn merge_set(set: &mut SelectionSet) {
    // Iterative over sets; recursion would follow the (bounded) nesting anyway.
    let mut stack: Vec<&mut SelectionSet> = vec![set];
    while let Some(set) = stack.pop() {
        let mut first: HashMap<Key, usize> = HashMap::new();
        let mut kept: Vec<async_graphql::Positioned<Selection>> =
            Vec::with_capacity(set.items.len());
        for mut selection in std::mem::take(&mut set.items) {
            match key(&selection.node) {
                Some(key) => match first.get(&key) {
                    Some(&at) => {
                        let later =
                            children(&mut selection.node).map(|s| std::mem::take(&mut s.items));
                        if let (Some(items), Some(into)) = (later, children(&mut kept[at].node)) {
                            into.items.extend(items);
                        }
                    }
                    None => {
                        first.insert(key, kept.len());
                        kept.push(selection);
                    }
                },
                None => kept.push(selection),
            }
        }
        set.items = kept;
        for selection in &mut set.items {
            if let Some(inner) = children(&mut selection.node) {
                stack.push(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn merged(text: &str) -> String {
        let mut document = parse_query(text).unwrap();
        merge(&mut document);
        let (_, operation) = document.operations.iter().next().unwrap();
        shape(&operation.node.selection_set.node)
    }

    /// The selections as `name{…}`, to compare shapes.
    fn shape(set: &SelectionSet) -> String {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => {
                    let inner = shape(&f.node.selection_set.node);
                    let key = f.node.response_key().node.to_string();
                    if inner.is_empty() {
                        key
                    } else {
                        format!("{key}{{{inner}}}")
                    }
                }
                Selection::FragmentSpread(f) => format!("...{}", f.node.fragment_name.node),
                Selection::InlineFragment(f) => {
                    format!("...{{{}}}", shape(&f.node.selection_set.node))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn identical_fields_become_one_with_the_union_of_their_selections() {
        assert_eq!(merged("{ a { x } a { y } a { x } b }"), "a{x y} b");
        let many = format!("{{ {} }}", "pool { name } ".repeat(499));
        assert_eq!(merged(&many), "pool{name}");
    }

    #[test]
    fn aliases_arguments_and_directives_keep_fields_apart() {
        assert_eq!(merged("{ a: b b }"), "a b");
        assert_eq!(merged("{ e(last: 1) { x } e(last: 2) { x } }"), "e{x} e{x}");
        assert_eq!(merged("{ e(last: 1) { x } e(last: 1) { y } }"), "e{x y}");
        assert_eq!(merged("{ a @skip(if: true) a }"), "a a");
    }

    #[test]
    fn repeated_spreads_and_inline_fragments_merge() {
        assert_eq!(
            merged("{ ...F ...F ...F } fragment F on Query { a }"),
            "...F"
        );
        assert_eq!(
            merged("{ ... on Query { a } ... on Query { b } ... { c } }"),
            "...{a b} ...{c}"
        );
    }
}
