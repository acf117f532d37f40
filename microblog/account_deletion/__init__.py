"""Deleting one's own account: refused at once (logged out everywhere, no log-in, no profile),
erased by a job (posts, pictures, likes, reposts, follows, notifications), with every count on
others' rows kept right. Its username is then free for anyone to take: the mentions of it in
others' posts were links to this account, and go with it, so they never point at a newcomer."""
