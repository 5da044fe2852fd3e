-- What the pool offers, announced: every transaction that changes the set of
-- offered namespaces takes a pool generation and tells every replica
-- (NOTIFY nspool_pool) which names came and went, so replicas serve
-- availableNamespaces from memory.
--
-- Generations come from a sequence, so writers never wait on each other for
-- one (a counter row would hold its lock through every commit and serialise
-- them). PostgreSQL delivers notices in commit order, which is the order
-- that matters; a generation names one transaction's change, so the replica
-- that wrote it can wait until its own change is in memory.

create sequence pool_generation_seq;

-- The generation that last changed whether this row is offered.
alter table pool_namespaces add column generation bigint not null default 0;

-- Offered: free, not retired, not known to have broken RBAC (the service's OFFERED).
create function nspool_offered(holder uuid, retired timestamptz, rbac text) returns boolean
language sql immutable parallel safe as $$
    select holder is null and retired is null and rbac in ('unknown', 'ok')
$$;

-- This transaction's generation, taken at its first change to the offered set.
create function nspool_pool_generation() returns bigint language plpgsql as $$
declare
    g bigint := nullif(current_setting('nspool.pool_generation', true), '')::bigint;
begin
    if g is null then
        g := nextval('pool_generation_seq');
        perform set_config('nspool.pool_generation', g::text, true);
    end if;
    return g;
end
$$;

-- A row's generation when this transaction stamped it, else null: what a
-- writer waits for before it answers (a change that left the offered set as
-- it was has nothing to wait for).
create function nspool_own_generation(g bigint) returns bigint language sql stable as $$
    select case when g = nullif(current_setting('nspool.pool_generation', true), '')::bigint then g end
$$;

create function pool_namespaces_stamp() returns trigger language plpgsql as $$
begin
    if (tg_op = 'INSERT' and nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state))
       or (tg_op = 'UPDATE' and nspool_offered(old.holder_deployment_id, old.retired_at, old.rbac_state)
                     is distinct from nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state)) then
        new.generation := nspool_pool_generation();
    end if;
    return new;
end
$$;
create trigger pool_namespaces_stamp before insert or update on pool_namespaces
    for each row execute function pool_namespaces_stamp();

-- One message per statement that changed the offered set (nothing for a
-- statement that changed no row's offered state):
-- "<generation>.<sequence> +name -name ...", or "<generation>.<sequence> *"
-- (reload) when the names would not fit a NOTIFY payload. The sequence keeps
-- two equal messages of one transaction from being merged into one.
create function pool_namespaces_notify() returns trigger language plpgsql as $$
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
        select string_agg(case when nspool_offered(holder_deployment_id, retired_at, rbac_state)
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
-- Transition tables allow one event per trigger.
create trigger pool_namespaces_notify_insert after insert on pool_namespaces
    referencing new table as changed for each statement execute function pool_namespaces_notify();
create trigger pool_namespaces_notify_update after update on pool_namespaces
    referencing new table as changed for each statement execute function pool_namespaces_notify();
create trigger pool_namespaces_notify_delete after delete or truncate on pool_namespaces
    for each statement execute function pool_namespaces_notify();

-- Tokens: a revoked or deleted token is dropped from every replica's cache
-- (NOTIFY nspool_tokens with the token's SHA-256 in hex).
create function api_tokens_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('nspool_tokens', encode(old.sha256, 'hex'));
    return null;
end
$$;
create trigger api_tokens_notify after update or delete on api_tokens
    for each row execute function api_tokens_notify();
