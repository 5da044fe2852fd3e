-- Bounds on what clients store, in the database as well as in the service:
-- stored JSON is at most 32 levels deep (so reading a row back never fails),
-- triggerer replicas are 0..10, token labels at most 128 characters.
-- Rows written before these bounds are repaired first, each with an event.

create function nspool_jsonb_depth(value jsonb) returns integer
language sql immutable parallel safe as $$
    with recursive walk(v, depth) as (
        select value, 1
        union all
        select child.value, walk.depth + 1
        from walk, lateral (
            select e.value from jsonb_each(case when jsonb_typeof(walk.v) = 'object' then walk.v else '{}'::jsonb end) e
            union all
            select a.value from jsonb_array_elements(case when jsonb_typeof(walk.v) = 'array' then walk.v else '[]'::jsonb end) a
        ) child
    )
    select max(depth) from walk
$$;

with repaired as (
    update deployments
    set config = case when config is not null and nspool_jsonb_depth(config) > 32 then null else config end,
        dag_deployment = case when dag_deployment is not null and nspool_jsonb_depth(dag_deployment) > 32 then null else dag_deployment end,
        triggerer_replicas = case when triggerer_replicas between 0 and 10 then triggerer_replicas else null end
    where (config is not null and nspool_jsonb_depth(config) > 32)
       or (dag_deployment is not null and nspool_jsonb_depth(dag_deployment) > 32)
       or triggerer_replicas not between 0 and 10
    returning id, namespace, release_name, workspace_id
)
insert into events (kind, namespace, deployment_id, release_name, workspace_id, actor, reason)
select 'repair', namespace, id, release_name, workspace_id, 'migration 20261129000001',
       'config or dagDeployment nested deeper than 32 levels, or triggerer replicas outside 0..10: cleared'
from repaired;

update api_tokens set label = left(label, 128) where char_length(label) > 128;

alter table deployments
    add constraint deployments_config_check
        check (config is null or (nspool_jsonb_depth(config) <= 32 and octet_length(config::text) <= 262144)),
    add constraint deployments_dag_deployment_check
        check (dag_deployment is null or (nspool_jsonb_depth(dag_deployment) <= 32 and octet_length(dag_deployment::text) <= 262144)),
    add constraint deployments_triggerer_replicas_check
        check (triggerer_replicas between 0 and 10);

alter table api_tokens
    add constraint api_tokens_label_length check (char_length(label) <= 128);
