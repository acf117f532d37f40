"""The follow graph: following, unfollowing, and the follower and following lists."""
