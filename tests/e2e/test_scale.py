"""Several instances behind the repository's nginx.conf behave as one, and losing or restarting
any of them costs readers nothing and writers never a silent loss."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import (
    PASSWORD,
    ROOT,
    Launcher,
    Visitor,
    WebProcess,
    fetch_rows,
    forms,
    free_port,
    sign_up,
    tail,
    wait_for,
)

pytestmark = pytest.mark.process

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENTS = 16
# An instance is stopped or killed once this many reads are answered, so requests are in
# flight, and the load goes on for READS_AFTER more: some seconds, past nginx's one-second
# fail_timeout, so requests meet the instance again after nginx first gave up on it.
READS_UNDER_WAY = 100
READS_AFTER = 300
# What nginx's own error page says when no instance answered (static/errors/).
UNAVAILABLE = "Look before you send it again."


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for 127.0.0.1: TLS terminated by nginx, as in production."""

    certificate: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> Tls:
        tls = cls(folder / "cert.pem", folder / "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(tls.key), "-out", str(tls.certificate)],
            check=True, capture_output=True,
        )  # fmt: skip
        return tls

    def trusted_by_clients(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.certificate)


@dataclass
class Nginx:
    popen: subprocess.Popen
    port: int
    prefix: Path
    tls: Tls | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        verify = self.tls.trusted_by_clients() if self.tls else True
        return httpx.Client(base_url=self.url, verify=verify)

    def wait_serving(self, instance: str, within: float = 10) -> None:
        """Until a request through nginx reaches `instance`: a restarted instance is back in
        rotation only once nginx's penalty for its refused connections (fail_timeout) is over,
        and a rolling restart that stops the next one before then can leave none."""

        def reached() -> bool:
            with self.client() as client:
                return client.get("/up", timeout=1).headers.get("X-Instance") == instance

        wait_for(reached, f"nginx sending requests to {instance}", self.popen, within=within)

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        self.popen.wait(10)


def nginx_config(
    site: Path, web_ports: list[int], listen_port: int, tls: Tls | None = None
) -> Path:
    """The repository's nginx.conf with this test's ports, in a site laid out like a checkout;
    with `tls`, listening with TLS as docs/scaling.md says to in production."""
    text = (ROOT / "nginx.conf").read_text()
    for default, port in zip((3001, 3002, 3003), web_ports, strict=True):
        text = text.replace(f"127.0.0.1:{default} ", f"127.0.0.1:{port} ")
    listen = f"listen 127.0.0.1:{listen_port};"
    if tls:
        listen = (
            f"listen 127.0.0.1:{listen_port} ssl; ssl_certificate {tls.certificate}; "
            f"ssl_certificate_key {tls.key};"
        )
    text = text.replace("listen 127.0.0.1:8080;", listen)
    (site / "static").symlink_to(ROOT / "static")
    config = site / "nginx.conf"
    config.write_text(text)
    return config


def nginx_command(config: Path, prefix: Path, *extra: str) -> list[str]:
    return [
        NGINX,
        "-p",
        f"{prefix}/",
        "-c",
        str(config),
        "-e",
        str(prefix / "logs/error.log"),
        *extra,
    ]


def nginx_prefix(site: Path) -> Path:
    """var/nginx with the folders nginx writes to, as Procfile.scale prepares it."""
    prefix = site / "var" / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "temp").mkdir()
    return prefix


def _let_workers_in(site: Path) -> None:
    """Started as root, nginx serves files from unprivileged worker processes: they must be
    able to walk to static/ through this test's private temporary folders."""
    for folder in (site, *site.parents):
        if folder == Path(tempfile.gettempdir()):
            break
        folder.chmod(folder.stat().st_mode | 0o011)


def start_nginx(
    site: Path, web_ports: list[int], up_status: int = 200, tls: Tls | None = None
) -> Nginx:
    """nginx in front of `web_ports`, once it answers /up with `up_status` (502 when none of
    them is listening)."""
    _let_workers_in(site)
    listen_port = free_port()
    config = nginx_config(site, web_ports, listen_port, tls)
    prefix = nginx_prefix(site)
    popen = subprocess.Popen(
        nginx_command(config, prefix, "-g", "daemon off;"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    nginx = Nginx(popen, listen_port, prefix, tls)

    def answers() -> bool:
        with nginx.client() as client:
            try:
                return client.get("/up", timeout=1).status_code == up_status
            except httpx.TransportError:
                return False

    wait_for(answers, f"nginx on {listen_port}", popen)
    return nginx


def _answers(url: str, status: int = 200) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == status
    except httpx.TransportError:
        return False


@dataclass
class Cluster:
    webs: list[WebProcess]
    nginx: Nginx
    database_url: str
    env: dict[str, str]
    cwd: Path


@pytest.fixture
def cluster(fresh_database: str, launcher: Launcher, pyz, workdir: Path) -> Iterator[Cluster]:
    """Three web instances on one database, behind nginx; no rate limits (a load test).

    fresh_database comes first, so it is dropped only after every process has stopped.
    """
    env = pyz.env(DATABASE_URL=fresh_database, RATE_LIMITS="off", SHUTDOWN_TIMEOUT="10")
    migrated = launcher.run(["migrate"], cwd=workdir, env=env)
    assert migrated.returncode == 0, migrated.stderr
    webs = []
    for n in range(3):
        instance_env = {**env, "INSTANCE_NAME": f"web-{n + 1}"}
        webs.append(launcher.web(cwd=workdir, env=instance_env, wait=False))
    for web in webs:
        web.wait_ready()
    site = workdir / "site"
    site.mkdir()
    nginx = start_nginx(site, [web.port for web in webs])
    try:
        yield Cluster(webs, nginx, fresh_database, env, workdir)
    finally:
        nginx.stop()


def test_the_repository_nginx_conf_passes_nginx_t(tmp_path):
    config = nginx_config(tmp_path, [3001, 3002, 3003], 8080)
    prefix = nginx_prefix(tmp_path)
    checked = subprocess.run(
        nginx_command(config, prefix, "-t"), capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_haproxy_example_passes_haproxy_c():
    checked = subprocess.run(
        [
            shutil.which("haproxy") or "/usr/sbin/haproxy",
            "-c",
            "-f",
            str(ROOT / "docs/haproxy.cfg"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_requests_reach_every_instance_and_a_login_is_honoured_by_all(cluster: Cluster):
    seen = set()
    with httpx.Client(base_url=cluster.nginx.url) as client:
        for _ in range(30):
            response = client.get("/public")
            assert response.status_code == 200
            seen.add(response.headers["X-Instance"])
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert seen == {"web-1", "web-2", "web-3"}

    with Visitor(httpx.Client(base_url=cluster.nginx.url)) as visitor:
        sign_up(visitor, "roamer")
        cookies = visitor.http.cookies
        for web in cluster.webs:
            response = httpx.get(f"{web.url}/settings", cookies=cookies)
            assert response.status_code == 200, f"{web.url} did not honour the session"


def test_nginx_refuses_metrics_that_each_instance_serves_to_a_scraper_nearby(cluster: Cluster):
    with httpx.Client(base_url=cluster.nginx.url) as client:
        for path in ("/metrics", "/metrics?format=text", "/%6Detrics"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert "X-Instance" not in response.headers, "the request reached an instance"
    for web in cluster.webs:
        direct = httpx.get(f"{web.url}/metrics")
        assert direct.status_code == 200
        assert "http_server_request_duration_seconds" in direct.text


def test_when_no_instance_answers_nginx_says_so_in_the_apps_words(tmp_path):
    nobody_listening = [free_port() for _ in range(3)]
    nginx = start_nginx(tmp_path, nobody_listening, up_status=502)
    try:
        with httpx.Client(base_url=nginx.url) as client:
            for response in (client.get("/"), client.post("/posts", data={"body": "hi"})):
                assert response.status_code == 502
                assert "<h1>Temporarily unavailable</h1>" in response.text
                assert UNAVAILABLE in response.text
                assert response.headers["Cache-Control"] == "no-store"
                assert "HX-Retarget" not in response.headers
            htmx = client.post("/posts", data={"body": "hi"}, headers={"HX-Request": "true"})
    finally:
        nginx.stop()
    assert htmx.status_code == 502
    assert htmx.text.startswith('<div class="flash error" role="alert">')
    assert htmx.headers["HX-Retarget"] == "#messages"
    assert htmx.headers["HX-Reswap"] == "innerHTML"


def test_the_app_knows_the_page_an_htmx_request_came_from_through_nginx(cluster: Cluster):
    """htmx names its page by its whole URL, port included, so nginx must pass the host on as
    the browser wrote it. A reply deleted under its post is the case that shows it: the answer
    then carries that post's new count of replies."""
    with Visitor(httpx.Client(base_url=cluster.nginx.url)) as visitor:
        sign_up(visitor, "threader")
        assert visitor.submit("/", "/posts", body="a question").status_code == 303
        post = int(re.search(r'id="post-(\d+)"', visitor.page("/")).group(1))
        assert visitor.submit(f"/posts/{post}", "/posts", body="an answer").status_code == 303
        thread = visitor.page(f"/posts/{post}")
        (delete,) = [
            f for f in forms(thread) if f.action.endswith("/delete") and f"/{post}/" not in f.action
        ]
        # As htmx sends it: the CSRF token in the header that <body> sets.
        token = next(f.fields["csrf_token"] for f in forms(thread) if "csrf_token" in f.fields)
        response = visitor.http.post(
            delete.action,
            headers={
                "HX-Request": "true",
                "HX-Current-URL": f"{cluster.nginx.url}/posts/{post}",
                "X-CSRF-Token": token,
            },
        )
    assert response.status_code == 200
    assert f'id="post-{post}-replies"' in response.text


def test_a_photo_too_large_is_refused_on_the_settings_page_through_nginx(cluster: Cluster):
    with Visitor(httpx.Client(base_url=cluster.nginx.url)) as visitor:
        sign_up(visitor, "photographer")
        (form,) = [f for f in forms(visitor.page("/settings")) if f.action == "/settings/avatar"]
        photo = b"\xff\xd8\xff" + bytes(5 * 1024 * 1024)  # as large as a phone's photo
        response = visitor.http.post(
            form.action, data=form.fields, files={"avatar": ("photo.jpg", photo, "image/jpeg")}
        )
    assert response.status_code == 413
    assert '<h1 class="page-title">Settings</h1>' in response.text
    assert "Pictures can be at most 512 kB; this one is about 5 MB." in response.text


def test_static_files_come_from_disk_through_nginx(cluster: Cluster):
    page = httpx.get(f"{cluster.nginx.url}/").text
    css = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', page).group(1)
    response = httpx.get(cluster.nginx.url + css)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "X-Instance" not in response.headers  # nginx answered, not an instance
    assert response.content == (ROOT / "static" / "app.css").read_bytes()
    assert HSTS not in response.headers, "over plain http, nothing to pin"


HSTS = "Strict-Transport-Security"


def test_behind_tls_every_response_says_strict_transport_security_once(
    fresh_database: str, launcher: Launcher, pyz, scratch_dir: Path
):
    env = pyz.env(
        DATABASE_URL=fresh_database,
        MICROBLOG_ENV="production",
        SECRET_KEY_BASE="e2e-production-secret-" + "s" * 32,
        RATE_LIMITS="off",
    )
    workdir = scratch_dir / "cwd"
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    web = launcher.web(cwd=workdir, env=env)
    site = scratch_dir / "site"
    site.mkdir()
    nginx = start_nginx(site, [web.port, free_port(), free_port()], tls=Tls.make(site))
    try:
        with nginx.client() as client:
            page = client.get("/public")  # the app's, in production, told https by nginx
            css = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', page.text).group(1)
            static = client.get(css)  # nginx's own, from disk
            assert web.stop() == 0, web.describe()
            unavailable = client.get("/public")  # nginx's own error page
    finally:
        nginx.stop()
    assert (page.status_code, static.status_code, unavailable.status_code) == (200, 200, 502)
    assert "X-Instance" in page.headers
    assert "X-Instance" not in static.headers
    for response in (page, static, unavailable):
        assert response.headers.get_list(HSTS) == ["max-age=31536000"], response.url


# --- load -------------------------------------------------------------------------------


@dataclass
class LoadResult:
    reads: int = 0
    failed_reads: list[str] = field(default_factory=list)
    writes_ok: list[str] = field(default_factory=list)  # body markers answered 303
    writes_failed: dict[str, str] = field(default_factory=dict)  # marker -> what came back


async def _sign_up_clients(base: str, count: int) -> list[httpx.AsyncClient]:
    clients = []
    for n in range(count):
        client = httpx.AsyncClient(base_url=base, timeout=15)
        page = (await client.get("/signup")).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        signed = await client.post(
            "/signup", data={"username": f"load{n}", "password": PASSWORD, "csrf_token": token}
        )
        assert signed.status_code == 303, signed.text
        clients.append(client)
    return clients


async def _client_loop(client: httpx.AsyncClient, n: int, stop: asyncio.Event, result: LoadResult):
    token = None
    step = 0
    while not stop.is_set():
        step += 1
        if step % 5 == 0 and token:  # one write in five
            marker = f"load {n} {step}"
            try:
                response = await client.post("/posts", data={"body": marker, "csrf_token": token})
                outcome = str(response.status_code)
                if response.status_code in (502, 504) and UNAVAILABLE not in response.text:
                    outcome += " with nginx's bare error page"
            except httpx.HTTPError as error:
                outcome = f"{type(error).__name__}: {error}"
            if outcome == "303":
                result.writes_ok.append(marker)
            else:
                result.writes_failed[marker] = outcome
            continue
        path = "/" if step % 2 else "/public"
        try:
            response = await client.get(path)
            result.reads += 1
            if response.status_code != 200:
                result.failed_reads.append(f"GET {path}: {response.status_code}")
            elif path == "/":
                found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
                token = found.group(1) if found else token
        except httpx.HTTPError as error:
            result.failed_reads.append(f"GET {path}: {type(error).__name__}: {error}")


def _reads_answered(result: LoadResult, count: int) -> None:
    wait_for(lambda: result.reads >= count, f"{count} reads through nginx")


async def _run_load(base: str, disrupt: Callable[[], None]) -> LoadResult:
    """CLIENTS clients read and write through `base`; once they are under way `disrupt()` runs
    (in a thread), and they go on until READS_AFTER more reads are answered after it returned."""
    clients = await _sign_up_clients(base, CLIENTS)
    result = LoadResult()
    stop = asyncio.Event()
    loops = [asyncio.create_task(_client_loop(c, n, stop, result)) for n, c in enumerate(clients)]
    try:
        await asyncio.to_thread(_reads_answered, result, READS_UNDER_WAY)
        await asyncio.to_thread(disrupt)
        await asyncio.to_thread(_reads_answered, result, result.reads + READS_AFTER)
    finally:
        stop.set()
        await asyncio.gather(*loops)
        for client in clients:
            await client.aclose()
    return result


async def _stored_markers(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT body FROM posts WHERE body LIKE 'Load %' OR body LIKE 'load %'"
        )
    finally:
        await conn.close()
    return {row["body"] for row in rows}


def _report(name: str, result: LoadResult) -> None:
    print(
        f"\n{name}: {result.reads} reads ({len(result.failed_reads)} failed), "
        f"{len(result.writes_ok)} writes answered 303, {len(result.writes_failed)} writes failed "
        f"({sorted(set(result.writes_failed.values()))})"
    )


def _assert_nothing_lost(result: LoadResult, database_url: str) -> None:
    """Every read succeeded; every write answered 303 is stored; every other write got an
    HTTP answer that says what happened."""
    assert result.failed_reads == []
    stored = asyncio.run(_stored_markers(database_url))
    assert set(result.writes_ok) <= stored, "a write answered 303 is missing from the database"
    for marker, outcome in result.writes_failed.items():
        assert outcome.isdigit(), f"{marker}: {outcome}"


def test_a_rolling_restart_under_load_loses_nothing(cluster: Cluster, launcher: Launcher):
    def restart_each_instance() -> None:
        for index, web in enumerate(list(cluster.webs)):
            status = web.stop(timeout=15)
            assert status == 0, f"{web.name} exited with {status}: {tail(web.stderr_path)}"
            env = {**cluster.env, "INSTANCE_NAME": f"web-{index + 1}"}
            cluster.webs[index] = launcher.web(cwd=cluster.cwd, env=env, port=web.port)
            cluster.nginx.wait_serving(env["INSTANCE_NAME"])

    result = asyncio.run(_run_load(cluster.nginx.url, restart_each_instance))
    _report("rolling restart", result)
    _assert_nothing_lost(result, cluster.database_url)


def test_killing_an_instance_under_load_costs_readers_nothing(cluster: Cluster):
    victim = cluster.webs[1]

    def kill_one() -> None:
        victim.popen.send_signal(signal.SIGKILL)
        victim.popen.wait(5)
        victim.stopped = True  # killed on purpose: teardown expects no clean exit from it

    result = asyncio.run(_run_load(cluster.nginx.url, kill_one))
    _report("kill -9", result)
    _assert_nothing_lost(result, cluster.database_url)


# --- worker placement -----------------------------------------------------------------


def _notified(visitor_url: str, cookies, text: str) -> bool:
    page = httpx.get(f"{visitor_url}/notifications", cookies=cookies).text
    return text in page


@pytest.mark.parametrize("placement", ["combined", "web+worker"])
def test_notifications_are_produced_with_either_worker_placement(
    placement, fresh_database: str, launcher: Launcher, pyz, workdir: Path
):
    from tests.e2e.conftest import Visitor

    env = pyz.env(DATABASE_URL=fresh_database, RATE_LIMITS="off")
    assert launcher.run(["migrate"], cwd=workdir, env=env).returncode == 0
    mode = "combined" if placement == "combined" else "web"
    first = launcher.web(cwd=workdir, env=env, mode=mode)
    second = launcher.web(cwd=workdir, env=env, mode=mode)
    if placement == "web+worker":
        launcher.start(["worker"], cwd=workdir, env=env)
    with (
        Visitor(httpx.Client(base_url=first.url)) as alice,
        Visitor(httpx.Client(base_url=second.url)) as bob,
    ):
        sign_up(alice, "alice")
        sign_up(bob, "bob")
        followed = bob.submit("/@alice", "/@alice/follow")
        assert followed.status_code == 303
        wait_for(
            lambda: _notified(first.url, alice.http.cookies, "followed you"),
            "the follow notification",
            within=15,
        )


# --- Procfile.scale ---------------------------------------------------------------------


PROCFILE_PORTS = (8080, 3001, 3002, 3003, 3100)  # 3100: the worker's /metrics
# The instances' own connections to the replica (not their monitors') whose last statement read
# posts: the replica's own view of who reads from it.
READ_FROM_THE_REPLICA = """
    SELECT count(*) FROM pg_stat_activity
    WHERE application_name LIKE 'microblog web %'
      AND application_name NOT LIKE '% replica monitor' AND query LIKE '%p.author_id%'
"""


def _read_from_the_replica(replica_url: str) -> bool:
    httpx.get("http://127.0.0.1:8080/@procfile", timeout=5)  # anonymous: no position to wait for
    return bool(asyncio.run(fetch_rows(replica_url, READ_FROM_THE_REPLICA))[0][0])


@pytest.mark.parametrize("procfile", ["Procfile.scale", "Procfile.pgbouncer"])
@pytest.mark.parametrize("runner", ["honcho", "foreman"])
def test_a_procfile_starts_the_whole_architecture(runner, procfile, pyz, scratch_dir: Path):
    """nginx, three instances, a worker, the primary and a replica they read from; with
    Procfile.pgbouncer, PgBouncer between the instances and the primary."""
    for port in PROCFILE_PORTS:
        assert not _answers(f"http://127.0.0.1:{port}/up"), f"port {port} is already in use"
    site = scratch_dir / runner
    site.mkdir()
    for name in (procfile, "nginx.conf", "static"):
        (site / name).symlink_to(ROOT / name)
    (site / "microblog.pyz").symlink_to(pyz.path)
    command = (
        [os.fspath(Path(os.sys.executable).parent / "honcho"), "start", "-f", procfile]
        if runner == "honcho"
        else [shutil.which("foreman") or "/usr/bin/foreman", "start", "-f", procfile]
    )
    log = site / "runner.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(
            command, cwd=site, env=pyz.env(), stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: _answers("http://127.0.0.1:8080/up"), runner, popen, within=120)
        seen = set()
        deadline = time.monotonic() + 30
        while len(seen) < 3 and time.monotonic() < deadline:
            response = httpx.get("http://127.0.0.1:8080/public", timeout=5)
            if response.status_code == 200:
                seen.add(response.headers["X-Instance"])
        assert len(seen) == 3, f"only {seen} answered: {tail(log)}"
        with Visitor(httpx.Client(base_url="http://127.0.0.1:8080")) as author:
            sign_up(author, "procfile")
        replica_url = (site / "var" / "replica" / "url").read_text().strip()
        wait_for(lambda: _read_from_the_replica(replica_url), "reads on the replica", popen, 30)
        assert ": in use, " in httpx.get("http://127.0.0.1:8080/up").text
        if procfile == "Procfile.pgbouncer":
            # Clients logged in through PgBouncer from five processes: the three instances,
            # the worker, and `db --pgbouncer` checking it took connections.
            pooler_log = (site / "var" / "pgbouncer" / "log").read_text()
            clients = set(re.findall(r"@unix\((\d+)\):\d+ login attempt: db=microblog", pooler_log))
            assert len(clients) >= 5, pooler_log
        wait_for(lambda: _answers("http://127.0.0.1:3100/metrics"), "worker /metrics", popen)
    finally:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(30)
        except subprocess.TimeoutExpired:
            popen.kill()
            pytest.fail(f"{runner} did not stop: {tail(log)}")
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, tail(log, 80)
