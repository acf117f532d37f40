"""The operator's guide in docs/ stays true: the commands, settings, links and tables it shows
exist in the code. Reads files and imports modules only: no process, no database."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

import microblog.background
import microblog.db.outage
from microblog.background import JOB_KINDS, recurring_jobs
from microblog.cli import build_parser
from microblog.config import Settings, documented_variables
from microblog.ratelimit.rules import DEFAULTS, parse_rules

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = sorted(DOCS.glob("*.md"))

# Upper-case names in code that are not settings, and why they may appear.
NOT_SETTINGS = {
    "SHIV_ROOT": "where the .pyz unpacks itself (shiv's own variable)",
    "PWD": "the shell's working directory, in nginx command lines",
    "PATH": "where the shell finds programs, a newer PgBouncer first",
}
# Names of code the guides point at: each must exist in its module.
CODE_NAMES = {"JOB_KINDS": microblog.background, "DATABASE_OUTAGE": microblog.db.outage}

FENCE = re.compile(r"^[ ]*```(?P<lang>\w*)\n(?P<body>.*?)^[ ]*```[ ]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INVOCATION = re.compile(
    r"(?:^|[\s(])(?:\./microblog\.pyz|python3? -m microblog|microblog)"
    r"\s+(?P<command>[a-z][a-z-]*)(?:\s+(?P<action>[a-z][a-z-]*))?"
)
SETTING_LIKE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
ASSIGNMENT = re.compile(r"(?<![\w-])([A-Z][A-Z0-9_]*)=")
SHELL_VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")
SHELL_OPERATORS = ("|", "&", ";", ">", "<", "2>")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _fences(text: str) -> list[tuple[str, str]]:
    return [(m["lang"], m["body"]) for m in FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub("", text)


def _inline_code(text: str) -> list[str]:
    return [span.replace("\n", " ") for span in INLINE_CODE.findall(_prose(text))]


def _all_code(text: str) -> list[str]:
    return _inline_code(text) + [body for _, body in _fences(text)]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _section(text: str, heading: str) -> str:
    """The body of the section under `heading` (any level), up to the next heading."""
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


def _table(section: str) -> list[list[str]]:
    """The rows of the first table in a section, header first, cells stripped."""
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    assert len(lines) >= 3, "no table with a header and rows"
    rows = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])] for line in lines]
    return [rows[0], *rows[2:]]  # without the |---| separator


def _unquote(cell: str) -> str:
    return cell.strip("`")


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", _prose(_text(path)), flags=re.MULTILINE)
    return {_slug(heading) for heading in headings}


# --- commands ---------------------------------------------------------------------------


def _invocations(text: str) -> list[tuple[str, str | None]]:
    found = []
    for code in _all_code(text):
        for line in code.splitlines():
            for match in INVOCATION.finditer(line):
                found.append((match["command"], match["action"]))
    return found


def test_the_guides_name_commands():
    named = [command for guide in GUIDES for command, _ in _invocations(_text(guide))]
    assert {"web", "worker", "combined", "migrate", "jobs", "db"} <= set(named)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_every_command_named_in_the_guides_exists(guide):
    commands = _subcommands(build_parser())
    for command, action in _invocations(_text(guide)):
        assert command in commands, f"{guide.name}: no command {command!r}"
        actions = _subcommands(commands[command])
        if actions and action is not None:
            assert action in actions, f"{guide.name}: no command {command} {action!r}"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_every_jobs_action_named_in_the_guides_exists(guide):
    actions = _subcommands(_subcommands(build_parser())["jobs"])
    for code in _inline_code(_text(guide)):
        match = re.match(r"jobs ([a-z]+)", code)
        if match:
            assert match[1] in actions, f"{guide.name}: no `jobs {match[1]}`"


def _microblog_arguments(tokens: list[str]) -> list[str] | None:
    """The arguments given to microblog on a shell command line, or None if it is not one."""
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]  # VARIABLE=value prefixes
    if not tokens:
        return None
    if tokens[0] == "microblog" or tokens[0].endswith("microblog.pyz"):
        rest = tokens[1:]
    elif Path(tokens[0]).name.startswith("python") and tokens[1:3] == ["-m", "microblog"]:
        rest = tokens[3:]
    else:
        return None
    for index, token in enumerate(rest):
        if token.startswith(SHELL_OPERATORS):
            return rest[:index]
    return rest


def _command_lines(text: str) -> list[tuple[str, list[str]]]:
    lines = []
    for lang, body in _fences(text):
        if lang not in ("", "sh", "console"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:
                continue  # output, not a command
            arguments = _microblog_arguments(tokens)
            if arguments is not None:
                lines.append((line, arguments))
    return lines


def _parse(arguments: list[str]) -> bool:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            build_parser().parse_args(arguments)
        except SystemExit as exit:
            return exit.code == 0  # --help and --version exit 0
    return True


def test_every_command_line_in_the_guides_parses():
    lines = [(guide, line, args) for guide in GUIDES for line, args in _command_lines(_text(guide))]
    assert len(lines) >= 10, "the guides show fewer command lines than expected"
    for guide, line, arguments in lines:
        assert _parse(arguments), f"{guide.name}: {line!r} is not a valid command line"


# --- settings ---------------------------------------------------------------------------


def _upper_case_names(text: str) -> set[str]:
    names = set()
    for code in _all_code(text):
        names |= set(SETTING_LIKE.findall(code))
        names |= set(ASSIGNMENT.findall(code))
        names |= set(SHELL_VARIABLE.findall(code))
    return names


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_every_variable_named_in_the_guides_is_a_setting(guide):
    settings = {variable for variable, _ in documented_variables()}
    unknown = _upper_case_names(_text(guide)) - settings - set(NOT_SETTINGS) - set(CODE_NAMES)
    assert unknown == set(), f"{guide.name} names variables that are not settings"


def test_code_names_in_the_guides_exist():
    for name, module in CODE_NAMES.items():
        assert hasattr(module, name), f"{module.__name__} has no {name}"


def test_the_scaling_guide_names_the_settings_that_matter_for_many_instances():
    named = _upper_case_names(_text(DOCS / "scaling.md"))
    assert {
        "DATABASE_URL",
        "QUEUE_DATABASE_URL",
        "CACHE_DATABASE_URL",
        "SECRET_KEY_BASE",
        "SECRET_KEY_FALLBACKS",
        "INSTANCE_NAME",
        "TRUSTED_PROXIES",
        "DB_POOL_SIZE",
        "SHUTDOWN_TIMEOUT",
        "WORKER_QUEUES",
        "WORKER_CONCURRENCY",
    } <= named


# --- links ------------------------------------------------------------------------------


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_every_relative_link_resolves(guide):
    for target in LINK.findall(_prose(_text(guide))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        path = (guide.parent / path_part).resolve() if path_part else guide
        assert path.exists(), f"{guide.name}: {target} does not exist"
        if anchor:
            assert path.suffix == ".md", f"{guide.name}: {target} has an anchor into a non-guide"
            assert anchor in _anchors(path), f"{guide.name}: {target} names no heading"


def test_the_index_lists_every_document():
    index = _text(DOCS / "README.md")
    linked = {target.partition("#")[0] for target in LINK.findall(index)}
    documents = {path.name for path in DOCS.iterdir() if path.suffix in (".md", ".cfg")}
    assert documents - {"README.md"} <= linked


# --- tables that mirror the code --------------------------------------------------------


def test_the_troubleshooting_table_has_every_column_filled():
    rows = _table(_section(_text(DOCS / "scaling.md"), "Troubleshooting"))
    header, body = rows[0], rows[1:]
    assert header == ["symptom", "check", "fix"]
    assert len(body) >= 7
    for row in body:
        assert len(row) == 3, f"a row has {len(row)} cells: {row[0][:60]!r}"
        assert all(cell for cell in row), f"a row has an empty cell: {row[0][:60]!r}"
    symptoms = " ".join(row[0] for row in body).lower()
    for topic in ("logged out", "public timeline", "never run", "per instance", "503"):
        assert topic in symptoms, f"no troubleshooting row about {topic!r}"
    assert "out of rotation" in symptoms
    assert "keeps failing" in symptoms


def test_the_rate_limit_table_shows_the_default_rules():
    rows = _table(_section(_text(DOCS / "cache.md"), "The rules"))
    documented = {_unquote(row[0]): row[1] for row in rows[1:]}
    assert set(documented) == set(DEFAULTS)
    for name, value in documented.items():
        assert parse_rules(f"{name}={value}")[name] == DEFAULTS[name], name


def test_the_job_kinds_table_matches_the_registry():
    rows = _table(_section(_text(DOCS / "jobs.md"), "Job kinds").split("listed in", 1)[1])
    documented = {_unquote(row[0]): row for row in rows[1:]}
    assert set(documented) == set(JOB_KINDS.kinds)
    for name, (_, queue, attempts, concurrency, _) in documented.items():
        kind = JOB_KINDS.kinds[name]
        assert _unquote(queue) == kind.queue, name
        assert int(attempts) == kind.max_attempts, name
        assert (int(concurrency) if concurrency else None) == kind.concurrency, name


def test_the_recurring_jobs_table_matches_the_schedule():
    rows = _table(_section(_text(DOCS / "jobs.md"), "Recurring jobs"))
    documented = {_unquote(row[0]): _unquote(row[1]) for row in rows[1:]}
    schedule = recurring_jobs(Settings.from_env({}))
    assert documented == {task.name: task.kind.name for task in schedule}


def test_the_keep_alive_timeouts_are_stated_as_configured():
    runtime = _text(ROOT / "microblog" / "runtime.py")
    app = int(re.search(r"config\.keep_alive_timeout = (\d+)", runtime).group(1))
    upstream = re.search(r"upstream microblog \{(.*?)\}", _text(ROOT / "nginx.conf"), re.S)
    nginx = int(re.search(r"keepalive_timeout (\d+)s;", upstream.group(1)).group(1))
    assert app > nginx, "the app must keep idle connections open longer than nginx"
    guide = _text(DOCS / "scaling.md")
    assert f"open for {app} seconds" in guide
    assert f"`keepalive_timeout {nginx}s`" in guide


def test_the_haproxy_retry_policy_is_the_one_described():
    config = _text(DOCS / "haproxy.cfg")
    retry_on = re.search(r"^\s*(retry-on .+?)\s*$", config, re.MULTILINE).group(1)
    assert f"`{retry_on}`" in _text(DOCS / "scaling.md")
