-- The dashboard reads the event log by time (the pool over the last days).
create index events_at_idx on events (at);
