-- When a pool namespace last started or stopped being offered, so "since"
-- on the dashboard is when a free namespace became free (released, found
-- clean, uncordoned, listed in the config again), not when it was first added.
alter table pool_namespaces add column offered_changed_at timestamptz;
update pool_namespaces set offered_changed_at = coalesce(claimed_at, added_at);
alter table pool_namespaces alter column offered_changed_at set default now();
alter table pool_namespaces alter column offered_changed_at set not null;

create or replace function pool_namespaces_stamp() returns trigger language plpgsql as $$
begin
    if (tg_op = 'INSERT'
        and nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state, new.releasing_since, new.cordoned_at))
       or (tg_op = 'UPDATE'
           and nspool_offered(old.holder_deployment_id, old.retired_at, old.rbac_state, old.releasing_since, old.cordoned_at)
               is distinct from
               nspool_offered(new.holder_deployment_id, new.retired_at, new.rbac_state, new.releasing_since, new.cordoned_at)) then
        new.generation := nspool_pool_generation();
        new.offered_changed_at := now();
    end if;
    return new;
end
$$;
