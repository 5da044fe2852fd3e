-- Stored JSON (`config`, `dagDeployment`) is at most 65,536 bytes as
-- PostgreSQL writes it out (`::text`): the bound the service checks and the
-- docs state (the check said 262,144 before). Rows written before are
-- repaired first (the field cleared), each with an event.
with repaired as (
    update deployments
    set config = case when octet_length(config::text) > 65536 then null else config end,
        dag_deployment = case when octet_length(dag_deployment::text) > 65536 then null else dag_deployment end
    where octet_length(config::text) > 65536 or octet_length(dag_deployment::text) > 65536
    returning id, namespace, release_name, workspace_id
)
insert into events (kind, namespace, deployment_id, release_name, workspace_id, actor, reason)
select 'repair', namespace, id, release_name, workspace_id, 'migration 20261203000006',
       'config or dagDeployment larger than 65536 bytes: cleared'
from repaired;

alter table deployments
    drop constraint deployments_config_check,
    drop constraint deployments_dag_deployment_check,
    add constraint deployments_config_check
        check (config is null or (nspool_jsonb_depth(config) <= 32 and octet_length(config::text) <= 65536)),
    add constraint deployments_dag_deployment_check
        check (dag_deployment is null or (nspool_jsonb_depth(dag_deployment) <= 32 and octet_length(dag_deployment::text) <= 65536));
