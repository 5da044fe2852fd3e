-- Pool hygiene: a namespace released with Kubernetes checks on is
-- `releasing` until nspool has listed what is left in it and found nothing
-- a Deployment left behind; only then is it offered again. And the labels
-- the platform selects Deployment namespaces by, checked on every namespace.

alter table pool_namespaces
    -- Released and not yet found clean (null: not releasing).
    add column releasing_since timestamptz,
    -- What the last check found, as "Kind/name" strings (null: never checked).
    add column leftovers jsonb,
    add column leftovers_checked_at timestamptz,
    -- Checks that found leftovers since the release: the next waits longer.
    add column leftover_checks integer not null default 0,
    -- Fingerprint of the pool labels last applied (null: never).
    add column labels_applied text,
    -- Pool labels a verification found missing or different, as "key=value".
    add column labels_missing jsonb;

-- Leftovers are a bounded list; a releasing namespace has no holder (the
-- claim offers only namespaces that are not releasing; this keeps any other
-- writer from breaking that).
alter table pool_namespaces
    add constraint pool_namespaces_leftovers_check
        check (leftovers is null or (jsonb_typeof(leftovers) = 'array' and jsonb_array_length(leftovers) <= 1000)),
    add constraint pool_namespaces_releasing_check
        check (releasing_since is null or holder_deployment_id is null);

-- Offered: free, not retired, not releasing, not known to have broken RBAC
-- (the service's OFFERED). The old three-argument form goes once nothing uses it.
create function nspool_offered(holder uuid, retired timestamptz, rbac text, releasing timestamptz) returns boolean
language sql immutable parallel safe as $$
    select holder is null and retired is null and releasing is null and rbac in ('unknown', 'ok')
$$;

create or replace function pool_namespaces_stamp() returns trigger language plpgsql as $$
begin
    if (tg_op = 'INSERT' and nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state, new.releasing_since))
       or (tg_op = 'UPDATE'
           and nspool_offered(old.holder_deployment_id, old.retired_at, old.rbac_state, old.releasing_since)
               is distinct from nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state, new.releasing_since)) then
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
        select string_agg(case when nspool_offered(holder_deployment_id, retired_at, rbac_state, releasing_since)
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

drop function nspool_offered(uuid, timestamptz, text);

drop index pool_namespaces_free_idx;
create index pool_namespaces_free_idx on pool_namespaces (name)
    where holder_deployment_id is null and retired_at is null and releasing_since is null
      and rbac_state in ('unknown', 'ok');
-- The leftover checks' scan: only releasing rows.
create index pool_namespaces_releasing_idx on pool_namespaces (releasing_since)
    where releasing_since is not null;
