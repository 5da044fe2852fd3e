//! Lists as long as the pool, resolved a chunk of items at a time.
//! async-graphql resolves a list's items all at once: one future per item,
//! each holding its fields' futures, all alive until the last finishes. At
//! 100,000 namespaces that was ~190 MiB for one `availableNamespaces` answer
//! of 7.5 MB. [`Chunked`] is the same list in the schema and in the answer
//! (item paths, errors and the extensions' resolver counts included), with
//! at most [`CHUNK`] item futures alive at once. The list keeps its source
//! rows (shared, as the pool copy's names, or owned) and makes each chunk's
//! GraphQL objects from them as it goes, so the rows are never held twice.

use async_graphql::extensions::ResolveInfo;
use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;

/// Items resolved at once: enough to overlap their data loaders' batches.
pub const CHUNK: usize = 256;

/// A list of `T` made from rows `S` and resolved [`CHUNK`] items at a
/// time; the schema sees `[T!]!`.
pub struct Chunked<T, S = T> {
    rows: Rows<S>,
    item: PhantomData<fn() -> T>,
}

enum Rows<S> {
    Owned(Vec<S>),
    Shared(Arc<[S]>),
}

impl<T, S> Chunked<T, S> {
    pub fn owned(rows: Vec<S>) -> Self {
        Self {
            rows: Rows::Owned(rows),
            item: PhantomData,
        }
    }

    pub fn shared(rows: Arc<[S]>) -> Self {
        Self {
            rows: Rows::Shared(rows),
            item: PhantomData,
        }
    }

    fn rows(&self) -> &[S] {
        match &self.rows {
            Rows::Owned(rows) => rows,
            Rows::Shared(rows) => rows,
        }
    }
}

impl<T, S> OutputType for Chunked<T, S>
where
    T: OutputType + From<S>,
    S: Clone + Send + Sync,
{
    fn type_name() -> Cow<'static, str> {
        Vec::<T>::type_name()
    }

    fn qualified_type_name() -> String {
        Vec::<T>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Vec::<T>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let parent_type = Vec::<T>::type_name();
        let return_type = T::qualified_type_name();
        let rows = self.rows();
        let mut values = Vec::with_capacity(rows.len());
        for (chunk_index, chunk) in rows.chunks(CHUNK).enumerate() {
            let items: Vec<T> = chunk.iter().cloned().map(T::from).collect();
            let futures = items.iter().enumerate().map(|(offset, item)| {
                let ctx = ctx.clone();
                let (parent_type, return_type) = (&parent_type, &return_type);
                async move {
                    // As async-graphql's own list resolution, item by item.
                    let ctx_idx = ctx.with_index(chunk_index * CHUNK + offset);
                    let resolve_fut = async {
                        OutputType::resolve(item, &ctx_idx, field)
                            .await
                            .map(Some)
                            .map_err(|error| ctx_idx.set_error_path(error))
                    };
                    futures::pin_mut!(resolve_fut);
                    let Some(path_node) = ctx_idx.path_node.as_ref() else {
                        return resolve_fut.await.map(Option::unwrap_or_default);
                    };
                    let info = ResolveInfo {
                        path_node,
                        parent_type,
                        return_type,
                        name: field.node.name.node.as_str(),
                        alias: field.node.alias.as_ref().map(|alias| alias.node.as_str()),
                        // Pool lists are never introspection.
                        is_for_introspection: false,
                        field: &field.node,
                    };
                    ctx.query_env
                        .extensions
                        .resolve(info, &mut resolve_fut)
                        .await
                        .map(Option::unwrap_or_default)
                }
            });
            values.extend(futures::future::try_join_all(futures).await?);
        }
        Ok(Value::List(values))
    }
}
