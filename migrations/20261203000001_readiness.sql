-- Offer only what is true: a pool namespace is offered once nspool has seen
-- it ready in the cluster. `pending`: a replica with Kubernetes has not yet
-- applied it (create mode) or verified it (verify mode); it is not offered
-- (nspool_offered takes `unknown` and `ok` only). `unknown` stays for
-- Kubernetes off, where nothing is checked and everything listed is offered.
alter table pool_namespaces drop constraint pool_namespaces_rbac_state_check;
alter table pool_namespaces add constraint pool_namespaces_rbac_state_check
    check (rbac_state in ('unknown', 'pending', 'ok', 'broken', 'missing'));
