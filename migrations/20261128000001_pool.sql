-- nspool's state. Every rule that can live here does: uniqueness of holders,
-- release names and live labels, the append-only event log.

create table workspaces (
    id          uuid primary key,
    label       text not null constraint workspaces_label_length check (char_length(label) between 1 and 128),
    description text constraint workspaces_description_length check (char_length(description) <= 1024),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table deployments (
    id                 uuid primary key,
    workspace_id       uuid not null constraint deployments_workspace_fk references workspaces (id),
    label              text not null constraint deployments_label_length check (char_length(label) between 1 and 128),
    description        text constraint deployments_description_length check (char_length(description) <= 1024),
    -- Unique across live and soft-deleted rows, as in Houston; free again after a hard delete.
    release_name       text not null constraint deployments_release_name_key unique,
    -- At most one Deployment, live or soft-deleted, per namespace.
    namespace          text not null constraint deployments_namespace_key unique,
    type               text not null,
    executor           text not null constraint deployments_executor_check
                           check (executor in ('LocalExecutor', 'CeleryExecutor', 'KubernetesExecutor')),
    airflow_version    text,
    runtime_version    text,
    cloud_role         text,
    config             jsonb,
    dag_deployment     jsonb,
    triggerer_replicas integer,
    cluster_id         uuid,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    deleted_at         timestamptz
);

-- A label names one live Deployment per workspace.
create unique index deployments_live_label_key on deployments (workspace_id, label) where deleted_at is null;
create index deployments_workspace_idx on deployments (workspace_id, created_at);
create index deployments_created_idx on deployments (created_at, id);
-- The reclaim job's scan: only soft-deleted rows, oldest first.
create index deployments_soft_deleted_idx on deployments (deleted_at) where deleted_at is not null;

create table pool_namespaces (
    name                 text primary key constraint pool_namespaces_name_check
                             check (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' and char_length(name) <= 63),
    source               text not null constraint pool_namespaces_source_check check (source in ('standard', 'advanced')),
    -- The holder, live or soft-deleted. Deleting the Deployment row frees the namespace.
    holder_deployment_id uuid constraint pool_namespaces_holder_key unique
                             constraint pool_namespaces_holder_fk references deployments (id) on delete set null,
    claimed_at           timestamptz,
    added_at             timestamptz not null default now(),
    -- Removed from the config: never offered again, never deleted.
    retired_at           timestamptz
);

-- availableNamespaces: an index of the free rows only, whatever the history.
create index pool_namespaces_free_idx on pool_namespaces (name)
    where holder_deployment_id is null and retired_at is null;

create table api_tokens (
    id           uuid primary key,
    sha256       bytea not null constraint api_tokens_sha256_key unique
                     constraint api_tokens_sha256_length check (octet_length(sha256) = 32),
    role         text not null constraint api_tokens_role_check check (role in (
                     'SYSTEM_ADMIN', 'SYSTEM_EDITOR', 'SYSTEM_VIEWER',
                     'WORKSPACE_ADMIN', 'WORKSPACE_EDITOR', 'WORKSPACE_VIEWER')),
    workspace_id uuid constraint api_tokens_workspace_fk references workspaces (id) on delete cascade,
    label        text not null default '',
    created_at   timestamptz not null default now(),
    revoked_at   timestamptz,
    constraint api_tokens_scope_check check ((role like 'WORKSPACE%') = (workspace_id is not null))
);
create index api_tokens_workspace_idx on api_tokens (workspace_id) where workspace_id is not null;

-- History: who did what to which namespace or Deployment, when and why.
create table events (
    id            bigint generated always as identity primary key,
    at            timestamptz not null default now(),
    kind          text not null,
    namespace     text,
    deployment_id uuid,
    release_name  text,
    workspace_id  uuid,
    actor         text not null,
    reason        text
);
create index events_namespace_idx on events (namespace, id) where namespace is not null;

create function events_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'the events table is append-only';
end
$$;
create trigger events_no_update before update or delete on events
    for each row execute function events_append_only();
create trigger events_no_truncate before truncate on events
    for each statement execute function events_append_only();
