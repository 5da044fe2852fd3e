-- Kubernetes work, as desired-versus-done state on each pool namespace, so
-- any replica can pick it up after another dies.
alter table pool_namespaces
    -- namespaces.create applies to it (a name from namespacePools.namespaces.names).
    add column managed boolean not null default false,
    -- Fingerprint of the RBAC last applied (null: never); re-applied when it differs.
    add column rbac_applied text,
    -- The holder the claim labels last written reflect (null: no labels).
    -- Label work is due where this is distinct from holder_deployment_id.
    add column labels_holder uuid,
    -- Verification: unknown until checked; broken or missing namespaces are not offered.
    add column rbac_state text not null default 'unknown'
        constraint pool_namespaces_rbac_state_check check (rbac_state in ('unknown', 'ok', 'broken', 'missing')),
    -- Denied namespaced permissions, as "verb resource (group)" strings.
    add column rbac_missing jsonb,
    add column rbac_checked_at timestamptz,
    -- The last Kubernetes failure and the retry schedule.
    add column kube_error text,
    add column kube_error_at timestamptz,
    add column kube_attempts integer not null default 0,
    add column kube_next_attempt_at timestamptz;

drop index pool_namespaces_free_idx;
create index pool_namespaces_free_idx on pool_namespaces (name)
    where holder_deployment_id is null and retired_at is null and rbac_state in ('unknown', 'ok');

-- The cluster-wide part of a verification: cluster-scoped permissions and
-- stale API groups, one row.
create table rbac_cluster_report (
    id          boolean primary key default true constraint rbac_cluster_report_single check (id),
    checked_at  timestamptz not null,
    cluster_scoped jsonb not null,
    stale       jsonb not null
);
