-- Kubernetes Events are posted from the event log (the leader replica's
-- Kubernetes worker): one row per event it tried, so none is posted twice and
-- none is skipped whatever order transactions commit in. An event is tried
-- three times at most, and only while it is younger than an hour (what a
-- cluster keeps Events for); rows go once their event is that old.
create table kube_event_posts (
    event_id     bigint primary key,
    attempts     integer not null default 1,
    attempted_at timestamptz not null default now(),
    posted_at    timestamptz,
    error        text
);
