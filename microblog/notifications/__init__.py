"""Notifications: replies, mentions, likes, reposts and follows, written by the jobs that follow
a post, a repost or a follow (posts/jobs.py, reposts/jobs.py, follows/jobs.py), read by their
owner."""
