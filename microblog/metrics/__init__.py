"""What one process tells Prometheus: counts kept where they happen, turned into text on scrape.

Recording costs a request or a job a few additions, never a lock, an await or a query; the
numbers other parts keep anyway (the caches' hit counts, the pools, the replicas' lag) are read
only when a scraper asks. The endpoint that answers scrapers is microblog/web/scrape.py.
"""
