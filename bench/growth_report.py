"""The results of bench/growth.py: the home query's plan, the runs' table, the two ratios and
their targets, as the "Scale-out: cost growth" section of docs/benchmarks.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import stack
from measure import Measurement

SECTION = "## Scale-out: cost growth"
# The CPU a home page costs may grow this much from following 10 to 5,000 accounts, and from
# the small data set to the large one (ten times its posts).
FOLLOWED_TARGET = 2.0
POSTS_TARGET = 1.3
SERVERS = ("postgres", "replica")


@dataclass(frozen=True)
class Route:
    """One instance serving one data set, and the database its reads may go to."""

    posts: int
    how: str  # "primary", or "replica": the instance has the replica as REPLICA_DATABASE_URL
    server: stack.Server
    database_url: str  # where the home query is explained


@dataclass(frozen=True)
class Explained:
    """What EXPLAIN (ANALYZE, BUFFERS) says of one run of the home query."""

    rows: int  # the query returned
    shared_hit: int  # blocks found in PostgreSQL's buffers
    shared_read: int  # blocks read from the operating system
    execution_ms: float

    @property
    def buffers(self) -> int:
        return self.shared_hit + self.shared_read


def parse_explain(document: list) -> Explained:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)'s output. The top node's buffers include those
    of every node below it and of the functions they call."""
    top = document[0]["Plan"]
    return Explained(
        rows=top["Actual Rows"] * top.get("Actual Loops", 1),
        shared_hit=top.get("Shared Hit Blocks", 0),
        shared_read=top.get("Shared Read Blocks", 0),
        execution_ms=document[0]["Execution Time"],
    )


@dataclass(frozen=True)
class GrowthRun:
    round: int
    posts: int
    how: str
    following: int
    shown: int  # posts on the page
    measurement: Measurement

    @property
    def cpu_ms(self) -> float:
        """The instance's and every PostgreSQL server's CPU per request."""
        m = self.measurement
        return m.app_ms_per_request + sum(m.ms_per_request(name) for name in SERVERS)


Key = tuple[int, str, int]  # posts, how, following


def _key(run: GrowthRun) -> Key:
    return (run.posts, run.how, run.following)


def _median_run(runs: list[GrowthRun], key: Key) -> GrowthRun:
    same = sorted((r for r in runs if _key(r) == key), key=lambda r: r.cpu_ms)
    return same[len(same) // 2]


def within_rounds(runs: list[GrowthRun], over: Key, under: Key) -> list[float]:
    """CPU per request of one run over another's, in each round."""
    cpu = {(r.round, *_key(r)): r.cpu_ms for r in runs}
    rounds = sorted({r.round for r in runs})
    return [cpu[(n, *over)] / cpu[(n, *under)] for n in rounds]


def verdict(ratio: float, target: float) -> str:
    if ratio <= target:
        return "met"
    return f"**not met**, by {ratio / target - 1:.0%}"


def table(runs: list[GrowthRun], plans: dict[Key, Explained]) -> str:
    lines = [
        "| posts | reads from | following | posts shown | req/s | p50 ms | p99 ms | errors | "
        "CPU per request (ms): app / primary / replica / all | home query: buffers "
        "(hit + read) | rows | ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for key in dict.fromkeys(_key(r) for r in runs):
        run, plan = _median_run(runs, key), plans[key]
        m = run.measurement
        cpu = " / ".join(
            f"{value:.2f}"
            for value in (m.app_ms_per_request, *map(m.ms_per_request, SERVERS), run.cpu_ms)
        )
        lines.append(
            f"| {run.posts:,} | {run.how} | {run.following:,} | {run.shown} | "
            f"{m.report.requests_per_second:,.0f} | {m.report.p50_ms:.1f} | "
            f"{m.report.p99_ms:.1f} | {m.report.errors} | {cpu} | "
            f"{plan.buffers:,} ({plan.shared_hit:,} + {plan.shared_read:,}) | {plan.rows} | "
            f"{plan.execution_ms:.2f} |"
        )
    return "\n".join(lines)


def ratios(runs: list[GrowthRun], plans: dict[Key, Explained]) -> str:
    """CPU per request at 5,000 followed over 10, and on the large data set over the small."""
    posts = sorted({r.posts for r in runs})
    routes = list(dict.fromkeys(r.how for r in runs))
    following = sorted({r.following for r in runs})
    pairs = [
        (f"following {following[-1]:,} / {following[0]:,}, {n:,} posts, {how}",
         (n, how, following[-1]), (n, how, following[0]), FOLLOWED_TARGET)
        for how in routes for n in posts
    ] + [
        (f"{posts[-1]:,} / {posts[0]:,} posts, following {f:,}, {how}",
         (posts[-1], how, f), (posts[0], how, f), POSTS_TARGET)
        for how in routes for f in following
    ]  # fmt: skip
    lines = [
        "| CPU per request | median | rounds' range | target | | home query's buffers |",
        "|---|---:|---:|---|---|---:|",
    ]
    for name, over, under, target in pairs:
        within = within_rounds(runs, over, under)
        median = statistics.median(within)
        buffers = plans[over].buffers / max(plans[under].buffers, 1)
        lines.append(
            f"| {name} | {median:.2f} | {min(within):.2f}-{max(within):.2f} | <= {target} | "
            f"{verdict(median, target)} | {buffers:.2f}x |"
        )
    return "\n".join(lines)


READING = """How to read these numbers:

- Each row is one reader's home page (`reader_N` follows the N most-followed accounts, made
  by `microblog seed --readers`; *posts shown* is how many its first page holds), served by
  one instance without a CPU budget, directly, under
  wrk's closed loop; the table shows each row's median round by CPU per request. The large
  data set is a copy of the small one grown by `microblog seed --grow`: the same accounts,
  follows and readers, ten times the posts.
- *CPU per request* adds the instance's CPU to all that the PostgreSQL servers used meanwhile
  (the primary's and the replica's, their exited backends included, from /proc), over the
  requests answered. The ratios are taken within each round, between runs made moments apart;
  the median and the range over the rounds are shown. The targets hold the page's total cost.
- *reads from*: *primary* rows have no replica; *replica* rows are an instance given the
  streaming replica as `REPLICA_DATABASE_URL`, which decides by its own rules where each read
  goes (docs/scaling.md, "Read replicas"): the replica column shows how much of the reading
  the replica did, and the home query's plan is taken on the replica.
- *home query*: EXPLAIN (ANALYZE, BUFFERS) of the statement the home page runs
  (microblog/timelines/queries.py), prepared with the pools' generic plans, for the first
  page (rows: a page and one more, to know whether there is a next), the second of two runs.
  Buffers are the 8 kB blocks it touched, those of the functions it calls included. Work
  bounded by the page keeps them flat as the number followed or the table grows; the ratios'
  last column shows by how much they grew."""


def replica_share(runs: list[GrowthRun]) -> str:
    """How much of the PostgreSQL work of the replica rows the replica did."""
    through = [r.measurement for r in runs if r.how == "replica"]
    if not through:
        return "No replica rows: no replica could be made here."
    replica = sum(m.ms_per_request("replica") for m in through)
    share = replica / max(replica + sum(m.ms_per_request("postgres") for m in through), 1e-9)
    return (
        f"Through the replica, the replica did {share:.0%} of the PostgreSQL work of those "
        "rows and the primary the rest."
    )


def section(runs: list[GrowthRun], plans: dict[Key, Explained], header: str) -> str:
    parts = [SECTION, header, table(runs, plans), ratios(runs, plans), replica_share(runs)]
    return "\n\n".join([*parts, READING])
