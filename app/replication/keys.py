"""Every Redis key and channel the replicas use, in one place."""

from __future__ import annotations

PREFIX = "veloz:"
RATE_BUCKET = PREFIX + "rl:"  # + identity: a hash {tokens, ts}
REVOKED = PREFIX + "revoked:"  # + token id: expires with the token
CHANGES_CHANNEL = PREFIX + "changes"  # pub/sub: "<topic> <replica id>", see changes.py
LEADER = PREFIX + "leader"  # the leader's replica id, with a lease
EVENTS = PREFIX + "events"  # stream: every durable engine event, entry id = event id
COMMANDS = PREFIX + "commands"  # stream: orders and cancels for the leader
COMMAND_GROUP = "leader"
REPLIES = PREFIX + "replies:"  # + replica id: the leader's answers to that replica
