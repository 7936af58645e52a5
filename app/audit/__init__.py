"""The audit log: one batched writer, queries, retention and archive."""
