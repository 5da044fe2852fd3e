-- Replicas with different configs must not flip the pool on every reload.
-- `pool_config`: the fingerprint of the pool listing last synced, and by
-- whom. `replica_configs`: each serving replica's heartbeat (every 10 s)
-- with the fingerprint of the pool listing its config file asks for. A
-- sync whose listing differs from the one in force is held back while
-- another live replica (seen within 30 s) still asks for the one in force.
create table pool_config (
    id          boolean primary key default true constraint pool_config_one_row check (id),
    fingerprint text not null constraint pool_config_fingerprint_length check (length(fingerprint) <= 128),
    applied_by  text not null constraint pool_config_applied_by_length check (length(applied_by) <= 253),
    applied_at  timestamptz not null default now()
);

create table replica_configs (
    replica     text primary key constraint replica_configs_replica_length check (length(replica) <= 253),
    wanted      text not null constraint replica_configs_wanted_length check (length(wanted) <= 128),
    -- Whether the replica runs the config it asks for (false: its reload or
    -- start-up sync is held back).
    in_force    boolean not null,
    seen_at     timestamptz not null default now()
);
