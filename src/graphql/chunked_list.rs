//! Lists as long as the pool, resolved a chunk of items at a time.
//! async-graphql resolves a list's items all at once: one future per item,
//! each holding its fields' futures, all alive until the last finishes. At
//! 100,000 namespaces that was ~190 MiB for one `availableNamespaces` answer
//! of 7.5 MB. [`Chunked`] is the same list in the schema and in the answer
//! (item paths, errors and the extensions' resolver counts included), with
//! at most [`CHUNK`] item futures alive at once. The list keeps its source
//! rows (shared, as the pool copy's names, or owned) and makes each chunk's
//! GraphQL objects from them as it goes; owned rows are given up as they
//! are answered, so a whole pool's rows and its answer are never both held.

use async_graphql::extensions::ResolveInfo;
use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

/// Items resolved at once: enough to overlap their data loaders' batches.
pub const CHUNK: usize = 256;

/// A list of `T` made from rows `S` and resolved [`CHUNK`] items at a
/// time; the schema sees `[T!]!`.
pub struct Chunked<T, S = T> {
    rows: Rows<S>,
    item: PhantomData<fn() -> T>,
}

enum Rows<S> {
    /// Last row first: chunks are taken from the end.
    Owned(Mutex<Vec<S>>),
    Shared(Arc<[S]>),
}

impl<T, S> Chunked<T, S> {
    pub fn owned(mut rows: Vec<S>) -> Self {
        rows.reverse();
        Self {
            rows: Rows::Owned(Mutex::new(rows)),
            item: PhantomData,
        }
    }

    pub fn shared(rows: Arc<[S]>) -> Self {
        Self {
            rows: Rows::Shared(rows),
            item: PhantomData,
        }
    }

    fn len(&self) -> usize {
        match &self.rows {
            Rows::Owned(rows) => rows.lock().unwrap_or_else(|e| e.into_inner()).len(),
            Rows::Shared(rows) => rows.len(),
        }
    }
}

impl<T, S: Clone> Chunked<T, S> {
    /// The `index`-th chunk of rows: copied when shared, taken when owned
    /// (the buffer shrinks as it empties). Empty past the last.
    fn chunk(&self, index: usize) -> Vec<S> {
        match &self.rows {
            Rows::Owned(rows) => {
                let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
                let from = rows.len().saturating_sub(CHUNK);
                let chunk: Vec<S> = rows.drain(from..).rev().collect();
                if rows.capacity() > 2 * rows.len() + CHUNK {
                    rows.shrink_to_fit();
                }
                chunk
            }
            Rows::Shared(rows) => rows
                .chunks(CHUNK)
                .nth(index)
                .map(<[S]>::to_vec)
                .unwrap_or_default(),
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
        let mut values = Vec::with_capacity(self.len());
        for chunk_index in 0.. {
            let chunk = self.chunk(chunk_index);
            if chunk.is_empty() {
                break;
            }
            let items: Vec<T> = chunk.into_iter().map(T::from).collect();
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
