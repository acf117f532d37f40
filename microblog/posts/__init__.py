"""Posts: writing, deleting, replying, liking, and how a body is shown."""
