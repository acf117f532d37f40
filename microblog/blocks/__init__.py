"""Blocks and mutes, and the rule that every read path applies to them.

A block parts two accounts both ways: the follows between them end and cannot start again,
neither can reply to or repost the other, and neither sees the other's posts or hears from
the other. A mute is one-sided and silent: the muted account's posts and reposts stay out of
the muter's timelines, threads and notifications, and nothing tells the muted account.

The rule lives in the database (migration 0010), so that every query applies the same one:

- over many rows, `author_id NOT IN (SELECT * FROM hidden_from($viewer))`: the accounts whose
  posts, reposts and notifications never reach the viewer (blocked either way, or muted);
  PostgreSQL reads the set once per query, into a hash table. Timelines, threads, search
  results, notifications and live updates filter with it;
- `blocked_with($viewer)`, the same for blocks alone: what the viewer may not see at all, even
  when they go looking (a profile, a post opened by its address, lists of people);
- for one pair, `shows_to(viewer, author)` and `may_see(viewer, author)` say the same.

A NULL viewer (nobody logged in) blocks and mutes no one. Writes that change what a viewer
sees say so with `changed(conn, BLOCKS, user_id)` (queries.py), for anything that keeps a
viewer's view of the site open, such as a live stream, to read the rule again.
"""
