-- Day-2 operations: cordons (a namespace, or the whole pool, taken out of
-- what is offered during maintenance) and workspace quotas (how many pool
-- namespaces one workspace may hold), both enforced here.

-- A cordoned namespace is never offered; its holder keeps it, and once
-- released it stays out until uncordoned or `cordon_until` passes.
alter table pool_namespaces
    add column cordon_reason text
        constraint pool_namespaces_cordon_reason_length check (char_length(cordon_reason) between 1 and 1024),
    add column cordoned_by   text,
    add column cordoned_at   timestamptz,
    add column cordon_until  timestamptz,
    add constraint pool_namespaces_cordon_check check (
        (cordoned_at is null) = (cordon_reason is null)
        and (cordoned_at is null) = (cordoned_by is null)
        and (cordon_until is null or cordoned_at is not null));
-- The expiry sweep's scan: only cordons that end by themselves.
create index pool_namespaces_cordon_until_idx on pool_namespaces (cordon_until)
    where cordon_until is not null;

-- Offered: free, not retired, not releasing, not cordoned, not known to have
-- broken RBAC (the service's OFFERED). The four-argument form goes.
create function nspool_offered(holder uuid, retired timestamptz, rbac text, releasing timestamptz, cordoned timestamptz)
returns boolean language sql immutable parallel safe as $$
    select holder is null and retired is null and releasing is null and cordoned is null
       and rbac in ('unknown', 'ok')
$$;

create or replace function pool_namespaces_stamp() returns trigger language plpgsql as $$
begin
    if (tg_op = 'INSERT'
        and nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state, new.releasing_since, new.cordoned_at))
       or (tg_op = 'UPDATE'
           and nspool_offered(old.holder_deployment_id, old.retired_at, old.rbac_state, old.releasing_since, old.cordoned_at)
               is distinct from
               nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state, new.releasing_since, new.cordoned_at)) then
        new.generation := nspool_pool_generation();
    end if;
    return new;
end
$$;

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
        select string_agg(case when nspool_offered(holder_deployment_id, retired_at, rbac_state, releasing_since, cordoned_at)
                               then '+' else '-' end || name, ' ' order by name)
        into changes from changed where generation = g;
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

drop function nspool_offered(uuid, timestamptz, text, timestamptz);

drop index pool_namespaces_free_idx;
create index pool_namespaces_free_idx on pool_namespaces (name)
    where holder_deployment_id is null and retired_at is null and releasing_since is null
      and cordoned_at is null and rbac_state in ('unknown', 'ok');

-- The whole pool cordoned: at most one row; while it holds (no `until`, or
-- `until` still ahead) no claim passes. Releases and reclaims go on.
create table pool_cordon (
    id          boolean primary key default true constraint pool_cordon_single check (id),
    reason      text not null constraint pool_cordon_reason_length check (char_length(reason) between 1 and 1024),
    cordoned_by text not null,
    cordoned_at timestamptz not null default now(),
    until       timestamptz
);

-- Every replica answers availableNamespaces from memory: a change of the
-- pool cordon makes each one load its copy again (the "*" notice), under a
-- pool generation the writer waits for.
create function pool_cordon_notify() returns trigger language plpgsql as $$
declare
    g bigint;
    seq integer := coalesce(nullif(current_setting('nspool.pool_notify_seq', true), '')::integer, 0) + 1;
begin
    -- A statement that changed no row (the expiry sweep, mostly) says nothing.
    if not exists (select 1 from changed) then
        return null;
    end if;
    g := nspool_pool_generation();
    perform set_config('nspool.pool_notify_seq', seq::text, true);
    perform pg_notify('nspool_pool', g || '.' || seq || ' *');
    return null;
end
$$;
-- Transition tables allow one event per trigger.
create trigger pool_cordon_notify_insert after insert on pool_cordon
    referencing new table as changed for each statement execute function pool_cordon_notify();
create trigger pool_cordon_notify_update after update on pool_cordon
    referencing new table as changed for each statement execute function pool_cordon_notify();
create trigger pool_cordon_notify_delete after delete on pool_cordon
    referencing old table as changed for each statement execute function pool_cordon_notify();

-- Quotas: a workspace's own (null: the default), and the default from the
-- config (`nspool.workspaceQuota`, written at every start and reload; null: none).
alter table workspaces
    add column namespace_quota integer constraint workspaces_namespace_quota_check check (namespace_quota >= 0);

create table pool_settings (
    id              boolean primary key default true constraint pool_settings_single check (id),
    workspace_quota integer constraint pool_settings_workspace_quota_check check (workspace_quota >= 0),
    updated_at      timestamptz not null default now()
);
insert into pool_settings (id) values (true);

-- Every Deployment row, live or soft-deleted, holds its namespace until it is
-- hard-deleted: a workspace may have at most its quota of them. The
-- workspace row is locked first, so racing inserts of one workspace (on any
-- replica) count one after another; each statement of this function reads a
-- fresh snapshot, so the count includes every insert that committed before.
create function deployments_quota() returns trigger language plpgsql as $$
declare
    quota integer;
    held  integer;
begin
    perform 1 from workspaces where id = new.workspace_id for no key update;
    select coalesce(w.namespace_quota, s.workspace_quota) into quota
    from workspaces w left join pool_settings s on s.id
    where w.id = new.workspace_id;
    if quota is null then
        return new;
    end if;
    select count(*) into held from deployments where workspace_id = new.workspace_id;
    if held >= quota then
        raise exception 'workspace % holds % namespaces; its quota is %', new.workspace_id, held, quota
            using errcode = 'check_violation',
                  constraint = 'workspaces_namespace_quota_reached',
                  detail = quota || ' ' || held;
    end if;
    return new;
end
$$;
create trigger deployments_quota before insert on deployments
    for each row execute function deployments_quota();
