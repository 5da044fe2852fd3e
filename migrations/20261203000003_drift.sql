-- When nspool last applied a namespace's objects: the drift watch's fresh
-- list (after a restart or a broken watch) finds what went missing while
-- nobody watched, and leaves alone what was applied after its list began.
alter table pool_namespaces add column rbac_applied_at timestamptz;
