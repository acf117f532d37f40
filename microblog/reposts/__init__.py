"""Reposts: sharing someone's post with one's followers. A repost is an entry of the home and
profile timelines of its own (timelines/), counted on the post's row, and told to its author."""
