"""Notifications: replies, mentions, likes and follows, written by the jobs that follow a post
or a follow (posts/jobs.py, follows/jobs.py), read by their owner."""
