-- A token's dashboard sessions are capped at 20: a sign-in past the cap ends
-- that token's oldest ones, so a script that signs in without end cannot
-- grow the table (a session lives 8 hours) and a person signing in again
-- always can. Kept here, so every replica and every writer keeps it: the
-- sign-ins of one token take turns on the token's row, so the cap holds
-- under concurrent sign-ins too. (nspool::pool::MAX_SESSIONS_PER_TOKEN
-- names the same 20.)
create index dashboard_sessions_token_idx on dashboard_sessions (token_id, created_at desc);

create function nspool_cap_sessions() returns trigger language plpgsql as $$
begin
    perform 1 from api_tokens where id = new.token_id for update;
    delete from dashboard_sessions
     where token_id = new.token_id
       and (expires_at < now()
            or sha256 in (select sha256 from dashboard_sessions
                          where token_id = new.token_id and expires_at >= now()
                          order by created_at desc, sha256
                          offset 19));
    return new;
end $$;

create trigger dashboard_sessions_cap before insert on dashboard_sessions
    for each row execute function nspool_cap_sessions();
