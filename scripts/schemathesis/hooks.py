"""nspool's side of the schemathesis run (loaded through SCHEMATHESIS_HOOKS).

Two things schemathesis cannot know: how to make nspool's own scalars, and
what counts as nspool failing. Houston's contract answers a refused request
with a coded entry in `errors` (NOT_FOUND, CONFLICT, BAD_USER_INPUT, ...), so
schemathesis' `not_a_server_error` (which wants expected outcomes in `data`)
is replaced by `nspool_never_fails`: no 5xx, and no error that is nspool's own
fault or goes uncoded.
"""

import json
import os
import uuid

import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

# Ids that exist (a workspace, a Deployment, a token), mixed with made-up ones,
# so that queries reach past "not found".
KNOWN_IDS = [i for i in os.environ.get("NSPOOL_FUZZ_IDS", "").split(",") if i]

schemathesis.graphql.scalar(
    "Uuid",
    st.one_of(
        st.sampled_from(KNOWN_IDS or [str(uuid.uuid4())]),
        st.uuids().map(str),
        # Not a UUID: must be refused as bad input, never crash.
        st.text(max_size=40),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        st.text(max_size=40),
    ).map(nodes.String),
)
# JSON arguments arrive as a string literal or as any GraphQL value.
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.text(max_size=200).map(nodes.String),
        st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    ),
)

# Every code nspool answers with but INTERNAL, which is nspool's own fault
# (nspool::graphql::CODES; tests/it/schemathesis.rs checks the two agree).
CODES = {
    "BAD_USER_INPUT",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "SERVICE_UNAVAILABLE",
}


@schemathesis.check
def nspool_never_fails(ctx, response, case):
    """No 5xx, a JSON answer, and every error coded and not nspool's fault."""
    if response.status_code >= 500:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
    try:
        body = json.loads(response.text)
    except ValueError:
        raise AssertionError(f"not JSON ({response.status_code}): {response.text[:200]}")
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in CODES:
            raise AssertionError(f"error coded {code!r}: {error.get('message', '')[:300]}")
