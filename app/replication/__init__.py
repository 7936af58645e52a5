"""Several gateway replicas behind a load balancer: PostgreSQL holds the durable state, Redis
the shared fast state (rate-limit buckets, revocations), the event stream, the leader lease
and the command queue to the leader."""
