"""Timelines: home, public, profile and hashtag, newest first, paged by post id."""
