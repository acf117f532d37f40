"""Two versions of microblog's home page side by side, each beside the baseline:

    .venv/bin/python bench/compare.py REVISION [--against REVISION] [--title TEXT]
        [--budget CORES] [--rounds N] [--seconds S] [--quick] [--write docs/benchmarks.md]

What a change bought or cost, measured as bench/scale.py measures a page, in the same minutes.
Each version runs from a checkout of its own (`git worktree`; --against defaults to this
checkout as it is, uncommitted changes included) on a database of its own, seeded by that
version's `microblog seed` with the same sizes, on one embedded PostgreSQL. The baseline
(bench/baseline_app.py) reads the second version's database. One instance of each, directly,
takes its turn within each round: first unbudgeted, then each in its own cgroup with a CPU
quota (bench/cgroups.py) where this machine allows it. Ratios are taken within each round
and their median and range over the rounds shown: each version's home / baseline, and the
second version's app CPU per request over the first's. PostgreSQL's CPU per request is shown
beside the app's, as a change to a query costs there.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cgroups
import httpx
import options
import procstat
import report
import scale
import stack
import wrk
from measure import Instance, Measurement, measure


@dataclass
class Contender:
    """One app measured: its name, instance and login, and every round's measurement."""

    name: str
    server: stack.Server
    instance: Instance
    cookie: str | None
    page_bytes: int
    runs: dict[float | None, list[Measurement]] = field(default_factory=dict)


def arguments() -> argparse.Namespace:
    parser = options.parser(__doc__.splitlines()[0])
    options.add_budget(parser)
    parser.add_argument("revision", help="the version to compare against (a git revision)")
    parser.add_argument("--against", help="the other version (default: this checkout as it is)")
    parser.add_argument("--title", help="the heading of the results' section")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of turns (default 5)")
    parser.add_argument("--seconds", type=int, default=6, help="each run's length (default 6)")
    args = parser.parse_args()
    options.check_budget(parser, args)
    return args


def checkout(revision: str, folder: Path) -> Path:
    git("worktree", "add", "--detach", "--quiet", str(folder), revision)
    return folder


def git(*words: str) -> str:
    return subprocess.run(
        ["git", *words], cwd=stack.ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def label(revision: str | None) -> str:
    """A version's short commit; this checkout's (None) says whether it has changes on top."""
    commit = git("rev-parse", "--short", revision or "HEAD")
    dirty = revision is None and git("status", "--porcelain")
    return f"{commit} with uncommitted changes" if dirty else commit


def contender(
    name: str, server: stack.Server, cookie: str | None, made: cgroups.Budgets | None
) -> Contender:
    """A started app as measured: in a group of its own when there are budgets, with the size
    of the page it serves."""
    [instance] = scale.fleet([server], name, made)
    page = httpx.get(server.url + "/", headers={"Cookie": cookie} if cookie else {})
    return Contender(name, server, instance, cookie, len(page.content))


def run_rounds(
    contenders: list[Contender], budget: float | None, sizes: options.Sizes, postmaster: int | None
) -> None:
    for contender in contenders:
        if contender.instance.group:
            contender.instance.group.limit(budget)
        contender.runs[budget] = []
    for number in range(sizes.rounds):
        # Each round in the other order, so no one always runs first.
        turns = contenders if number % 2 == 0 else contenders[::-1]
        for contender in turns:
            contender.runs[budget].append(
                measure(
                    contender.server.url + "/",
                    sizes.connections,
                    sizes.seconds,
                    contender.cookie,
                    [contender.instance],
                    {"postgres": postmaster} if postmaster else {},
                    budget,
                )
            )
        stack.log(
            f"{'unbudgeted' if budget is None else f'budget {budget:g}'}, round {number + 1}: "
            + ", ".join(
                f"{c.name} {c.runs[budget][-1].report.requests_per_second:.0f}/s" for c in turns
            )
        )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} | {min(values):.2f}-{max(values):.2f}"


def section(title: str, header: str, contenders: list[Contender]) -> str:
    first, second, baseline = contenders
    lines = [
        f"## {title}",
        "",
        header,
        "",
        "| version | budget | req/s | app CPU ms/request | PostgreSQL CPU ms/request "
        "| page bytes |",
        "|---|---|--:|--:|--:|--:|",
    ]
    budgets = list(first.runs)
    for budget in budgets:
        for contender in contenders:
            runs = contender.runs[budget]
            lines.append(
                f"| {contender.name} | {'none' if budget is None else f'{budget:g}'} "
                f"| {statistics.median(r.report.requests_per_second for r in runs):,.0f} "
                f"| {statistics.median(r.app_ms_per_request for r in runs):.2f} "
                f"| {statistics.median(r.ms_per_request('postgres') for r in runs):.2f} "
                f"| {contender.page_bytes:,} |"
            )
    lines += ["", "| ratio | budget | median | rounds' range |", "|---|---|--:|---|"]
    for budget in budgets:
        shown = "none" if budget is None else f"{budget:g}"
        for contender in (first, second):
            ratios = [
                a.report.requests_per_second / b.report.requests_per_second
                for a, b in zip(contender.runs[budget], baseline.runs[budget], strict=True)
            ]
            lines.append(f"| {contender.name} / baseline, req/s | {shown} | {spread(ratios)} |")
        cpu = [
            b.app_ms_per_request / a.app_ms_per_request
            for a, b in zip(first.runs[budget], second.runs[budget], strict=True)
        ]
        lines.append(
            f"| {second.name} / {first.name}, app CPU per request | {shown} | {spread(cpu)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    args = arguments()
    sizes = replace(
        options.QUICK if args.quick else options.FULL, rounds=args.rounds, seconds=args.seconds
    )
    stack.require("wrk")
    started_at = time.monotonic()
    names = [label(args.revision), label(args.against)]
    title = args.title or f"{names[1]} against {names[0]}"
    with (
        tempfile.TemporaryDirectory(prefix="comparebench-") as tmp,
        scale.budgets(args.budget, args.period_ms) as (made, budget_line),
        stack.processes() as started,
    ):
        scratch = Path(tmp)
        sources = [checkout(args.revision, scratch / "first")]
        sources.append(checkout(args.against, scratch / "second") if args.against else None)
        try:
            server_url = stack.embedded_database(started, scratch / "pg")
            postmaster = procstat.postmaster_pid(str(scratch / "pg" / "pgdata"))
            urls = []
            for number, source in enumerate(sources):
                # Empty: each version's seed applies its own migrations.
                url = stack.create_database(server_url, f"compare{number}")
                stack.seed(
                    url, "--users", sizes.users, "--posts", sizes.posts,
                    "--follows", sizes.follows, source=source,
                )  # fmt: skip
                urls.append(url)
            contenders = []
            for number, (name, source, url) in enumerate(zip(names, sources, urls, strict=True)):
                [server] = stack.start_servers(
                    started, "microblog", 1, url, scratch / f"app{number}", source=source
                )
                cookie, following = stack.session_cookie(server, url)
                contenders.append(contender(name, server, cookie, made))
            [server] = stack.start_servers(started, "baseline", 1, urls[1], scratch / "baseline")
            contenders.append(contender("baseline", server, None, made))
            run_rounds(contenders, None, sizes, postmaster)
            if made:
                run_rounds(contenders, args.budget, sizes, postmaster)
        finally:
            for source in filter(None, sources):
                git("worktree", "remove", "--force", str(source))
    header = (
        f"`{report.command_line(sys.argv)}` on {time.strftime('%Y-%m-%d')}: "
        f"{sizes.users:,} users, {sizes.posts:,} posts, {sizes.follows:,} follows in each "
        f"version's database. {budget_line}. One instance of each, directly, "
        f"wrk -t{wrk.THREADS} with {sizes.connections} connections, {sizes.seconds} s per run "
        f"after a {wrk.WARM_UP_SECONDS} s warm-up, "
        f"{sizes.rounds} rounds; the home page is that of a demo account following "
        f"{following} people. The whole run took {time.monotonic() - started_at:.0f} s."
    )
    report.publish(section(title, header, contenders), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
