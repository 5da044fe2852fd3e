-- Many clusters (Software 1.x): one nspool serves the pools of several
-- Kubernetes clusters. A pool namespace is (cluster, name): the same name may
-- be in two clusters, held by two Deployments at once, and every rule that
-- held per name now holds per cluster, here in the database.
--
-- An install upgraded from one cluster keeps every row: they all belong to
-- the default cluster made here (its id is kept for good; `nspool.clusterId`
-- may name it instead, and the id then changes everywhere at once through
-- the foreign keys' `on update cascade`).

create table clusters (
    id         uuid primary key,
    -- A short stable number for the pool's change notices (a UUID per name
    -- would make them four times longer).
    no         integer generated always as identity constraint clusters_no_key unique,
    name       text not null constraint clusters_name_key unique
                   constraint clusters_name_check
                   check (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' and char_length(name) <= 63),
    added_at   timestamptz not null default now(),
    -- Removed from the config: its namespaces are retired, never deleted.
    retired_at timestamptz,
    -- Whether the cluster's Kubernetes worker (the leader's) last reached its
    -- API server, when, and what failed (null: never checked).
    reachable  boolean,
    checked_at timestamptz,
    check_error text constraint clusters_check_error_length check (char_length(check_error) <= 1024)
);
insert into clusters (id, name) values (gen_random_uuid(), 'default');

-- Pool rows: keyed by (cluster, name).
alter table pool_namespaces add column cluster_id uuid;
update pool_namespaces set cluster_id = (select id from clusters);
alter table pool_namespaces alter column cluster_id set not null;
alter table pool_namespaces
    add constraint pool_namespaces_cluster_fk foreign key (cluster_id)
        references clusters (id) on update cascade;
alter table pool_namespaces drop constraint pool_namespaces_pkey;
alter table pool_namespaces add constraint pool_namespaces_pkey primary key (cluster_id, name);

-- Deployments: always in a cluster. The clusterId clients sent before was
-- not used (one cluster was served): every row is in the default cluster.
update deployments set cluster_id = (select id from clusters)
    where cluster_id is distinct from (select id from clusters);
alter table deployments alter column cluster_id set not null;
alter table deployments
    add constraint deployments_cluster_fk foreign key (cluster_id)
        references clusters (id) on update cascade;
-- At most one Deployment, live or soft-deleted, per namespace of a cluster.
alter table deployments drop constraint deployments_namespace_key;
alter table deployments add constraint deployments_namespace_key unique (cluster_id, namespace);
alter table deployments add constraint deployments_cluster_id_key unique (cluster_id, id);
-- A namespace's holder is a Deployment of the same cluster. (The one-column
-- foreign key still frees the namespace when its Deployment row goes; this
-- one is checked after it, when the holder is already null.)
alter table pool_namespaces
    add constraint pool_namespaces_holder_cluster_fk foreign key (cluster_id, holder_deployment_id)
        references deployments (cluster_id, id) on update cascade;

create index pool_namespaces_cluster_idx on pool_namespaces (cluster_id, name);
drop index pool_namespaces_free_idx;
create index pool_namespaces_free_idx on pool_namespaces (cluster_id, name)
    where holder_deployment_id is null and retired_at is null and releasing_since is null
      and cordoned_at is null and rbac_state in ('unknown', 'ok');

-- History: which cluster a namespace event was in (null: not about one
-- cluster's namespace, e.g. a token change). Events written before are all
-- the default cluster's. The log stays append-only but for this column
-- following its cluster's id (`nspool.clusterId` given later).
create or replace function events_append_only() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' and (to_jsonb(new) - 'cluster_id') = (to_jsonb(old) - 'cluster_id') then
        return new;
    end if;
    raise exception 'the events table is append-only';
end
$$;
alter table events add column cluster_id uuid;
update events set cluster_id = (select id from clusters) where namespace is not null;
alter table events
    add constraint events_cluster_fk foreign key (cluster_id) references clusters (id) on update cascade;
drop index events_namespace_idx;
create index events_namespace_idx on events (cluster_id, namespace, id) where namespace is not null;

-- The whole-pool cordon, the cluster-wide RBAC report and the Kubernetes
-- worker's lease: one per cluster.
alter table pool_cordon add column cluster_id uuid;
update pool_cordon set cluster_id = (select id from clusters);
alter table pool_cordon alter column cluster_id set not null;
alter table pool_cordon drop constraint pool_cordon_pkey;
alter table pool_cordon drop constraint pool_cordon_single;
alter table pool_cordon drop column id;
alter table pool_cordon add constraint pool_cordon_pkey primary key (cluster_id);
alter table pool_cordon add constraint pool_cordon_cluster_fk foreign key (cluster_id)
    references clusters (id) on update cascade on delete cascade;

alter table rbac_cluster_report add column cluster_id uuid;
update rbac_cluster_report set cluster_id = (select id from clusters);
alter table rbac_cluster_report alter column cluster_id set not null;
alter table rbac_cluster_report drop constraint rbac_cluster_report_pkey;
alter table rbac_cluster_report drop constraint rbac_cluster_report_single;
alter table rbac_cluster_report drop column id;
alter table rbac_cluster_report add constraint rbac_cluster_report_pkey primary key (cluster_id);
alter table rbac_cluster_report add constraint rbac_cluster_report_cluster_fk foreign key (cluster_id)
    references clusters (id) on update cascade on delete cascade;

alter table kube_lease add column cluster_id uuid;
update kube_lease set cluster_id = (select id from clusters);
alter table kube_lease alter column cluster_id set not null;
alter table kube_lease drop constraint kube_lease_pkey;
alter table kube_lease drop constraint kube_lease_one_row;
alter table kube_lease drop column id;
alter table kube_lease add constraint kube_lease_pkey primary key (cluster_id);
alter table kube_lease add constraint kube_lease_cluster_fk foreign key (cluster_id)
    references clusters (id) on update cascade on delete cascade;

-- Change notices name each namespace with its cluster's number:
-- "<generation>.<sequence> +3/name -1/name ...".
create or replace function pool_namespaces_notify() returns trigger language plpgsql as $$
declare
    g bigint := nullif(current_setting('nspool.pool_generation', true), '')::bigint;
    seq integer := coalesce(nullif(current_setting('nspool.pool_notify_seq', true), '')::integer, 0) + 1;
    changes text;
begin
    if tg_op in ('DELETE', 'TRUNCATE') then
        g := nspool_pool_generation();
        changes := '*';
    elsif g is null then
        return null;
    else
        select string_agg(case when nspool_offered(c.holder_deployment_id, c.retired_at, c.rbac_state,
                                                   c.releasing_since, c.cordoned_at)
                               then '+' else '-' end || k.no || '/' || c.name, ' ' order by k.no, c.name)
        into changes from changed c join clusters k on k.id = c.cluster_id where c.generation = g;
        if changes is null then
            return null;
        end if;
        if octet_length(changes) > 7000 then
            changes := '*';
        end if;
    end if;
    perform set_config('nspool.pool_notify_seq', seq::text, true);
    perform pg_notify('nspool_pool', g || '.' || seq || ' ' || changes);
    return null;
end
$$;
