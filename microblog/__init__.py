"""microblog: a server-rendered microblog built to scale out behind a load balancer."""

__version__ = "0.1.0"
