"""The operators' console at /admin: the queue, recurring jobs, processes, cache, replicas and
connections at a glance, and the few actions an operator takes on them, each one audited.

Only accounts granted with `admin grant USERNAME` see it; to everyone else every /admin
address is a page that does not exist.
"""
