-- Dashboard sign-ins: a random session id (stored as its SHA-256) bound to the
-- token that signed in. Revoking or deleting the token ends its sessions (the
-- lookup joins live tokens only; a deleted token takes its sessions along).
create table dashboard_sessions (
    sha256     bytea primary key constraint dashboard_sessions_sha256_length check (octet_length(sha256) = 32),
    token_id   uuid not null constraint dashboard_sessions_token_fk references api_tokens (id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);
create index dashboard_sessions_expires_idx on dashboard_sessions (expires_at);
