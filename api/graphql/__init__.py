"""The GraphQL engine room: transports and the execution pipeline.

- `view.py`: the HTTP endpoint (Strawberry's ASGI view), with `http_input.py` (what it accepts
  before GraphQL runs) and `persisted.py` (persisted queries and per-tenant allow-lists);
- `ws.py`: the graphql-transport-ws endpoint, `ws_connection.py` (the protocol, per socket),
  `ws_groups.py` (multiplexed subscriptions), `ws_guard.py`, `ws_watch.py`;
- `executable.py`: the executable schema built from `schema/`'s roots, with its extensions in
  order: `metrics.py` (OperationMetrics), `masking.py` (MaskUnexpectedErrors), `compiled.py`
  (CompiledQueries, the one-statement fast path), `transaction.py` (MutationTransaction, with
  `restricted.py`'s read-only refusal as its hook), and the abuse limits (`limits.py`,
  `cost.py`, `global_ids.py`) in the parser and validation caches.

`schema/` (types, resolvers, loaders, permissions) never imports from here.
"""
