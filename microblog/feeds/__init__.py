"""Atom feeds of an account's posts and of a hashtag's.

A feed is public and anonymous: readers fetch it without a session, so it shows what a visitor
who is not logged in sees, whoever asks; blocks and mutes, which belong to an account, do not
apply. A feed is cached in the shared cache until the next write it shows, as the public page
is, and answers a conditional request whose ETag or date still holds with 304.
"""
