"""Notifications: replies, mentions, likes and follows, written by jobs, read by their owner."""
