-- The Kubernetes worker's leader holds a lease, as client-go's leader
-- election does: one row, renewed every few seconds by its holder. When the
-- holder stops renewing (crashed, partitioned, its connection half-open),
-- the lease expires and another replica takes it; the old holder stops
-- working before that (its own deadline is shorter than the lease). A plain
-- row, so it works through PgBouncer in transaction mode too. (It replaces
-- a session advisory lock, which a half-open connection held for as long as
-- TCP keepalive allowed.)
create table kube_lease (
    id          boolean primary key default true constraint kube_lease_one_row check (id),
    holder      text not null constraint kube_lease_holder_length check (length(holder) <= 253),
    acquired_at timestamptz not null default now(),
    renewed_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
