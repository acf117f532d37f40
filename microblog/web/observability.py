"""Request ids, the instance name on every response, one access-log line per request, and its
place in the process's request metrics (microblog/metrics/http.py).

Recorded here, where the request's duration is measured anyway, a request pays no hook of its
own for its metrics: a few additions. It is labelled by its route's template
(`/posts/<id:post_id>`), never by the path a client sent, so the series are as many as the
routes; the in-flight count is kept around the whole app by microblog/web/scrape.py.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from quart import Response, g, request

from microblog import logs
from microblog.web.state import state

REQUEST_ID_HEADER = "X-Request-ID"
INSTANCE_HEADER = "X-Instance"
# nginx's $request_id is 32 hex digits; accept any short token of safe characters.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

log = logging.getLogger("microblog.access")


async def start_request() -> None:
    g.started = time.perf_counter()
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = sent if _VALID_REQUEST_ID.match(sent) else secrets.token_hex(16)
    logs.request_id.set(g.request_id)


async def finish_request(response: Response) -> Response:
    response.headers[INSTANCE_HEADER] = state().instance_name
    if "request_id" not in g:  # failed before start_request ran
        return response
    response.headers[REQUEST_ID_HEADER] = g.request_id
    seconds = time.perf_counter() - g.started
    rule = request.url_rule
    state().metrics.http.observe(
        request.method, rule.rule if rule is not None else None, response.status_code, seconds
    )
    if log.isEnabledFor(logging.INFO):  # the line's fields cost more than the check
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "ms": round(seconds * 1000, 1),
                "client": request.remote_addr,
            },
        )
    return response
