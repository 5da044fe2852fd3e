-- Reclaim runs: one row per run. A scheduled tick is claimed by inserting its
-- row (unique scheduled_for), so exactly one replica runs each tick.
create table reclaim_runs (
    id              bigint generated always as identity primary key,
    scheduled_for   timestamptz constraint reclaim_runs_tick_key unique,
    trigger         text not null constraint reclaim_runs_trigger_check check (trigger in ('schedule', 'manual')),
    replica         text not null,
    older_than_days integer not null,
    dry_run         boolean not null,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    reclaimed       integer not null default 0,
    errors          text,
    -- Dry runs: what would have been reclaimed ({releaseName, namespace} objects).
    would_reclaim   jsonb,
    constraint reclaim_runs_tick_check check ((trigger = 'schedule') = (scheduled_for is not null))
);
create index reclaim_runs_started_idx on reclaim_runs (started_at desc);
