-- Reclaim runs hold a lease on their own row (renewed every few seconds by
-- the replica running it) instead of a session advisory lock: a run whose
-- replica died or was cut off is taken over by another replica once its
-- lease expired, and finished. At most one run is unfinished at a time: the
-- database says so (`reclaim_runs_one_running`), not the code.
alter table reclaim_runs
    add column holder text constraint reclaim_runs_holder_length check (length(holder) <= 253),
    add column lease_expires_at timestamptz,
    add column taken_over integer not null default 0;

-- Runs left unfinished by replicas before this version (under the advisory
-- lock, a killed run stayed "running" for ever) are closed with what they
-- recorded; a run still going on an old replica finishes its row itself.
update reclaim_runs
   set finished_at = now(),
       errors = coalesce(errors, 'closed at the upgrade to run leases: the replica running it had stopped')
 where finished_at is null;

create unique index reclaim_runs_one_running on reclaim_runs ((true)) where finished_at is null;
