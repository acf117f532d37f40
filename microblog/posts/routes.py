"""Writing, reading, deleting and liking posts."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from quart import Blueprint, Response, abort, redirect, request
from werkzeug.exceptions import RequestEntityTooLarge

from microblog.blocks.queries import relation
from microblog.jobs.queue import enqueue, enqueue_many
from microblog.pictures import too_large
from microblog.post_pictures.jobs import prepare_picture
from microblog.post_pictures.queries import add_pictures
from microblog.posts import queries
from microblog.posts.cards import render_cards
from microblog.posts.forms import NewPost
from microblog.posts.jobs import post_created, post_liked
from microblog.posts.render import hashtags, mentions
from microblog.users.sessions import current_user, login_required
from microblog.web.db import connection, reading, transaction
from microblog.web.errors import error_response
from microblog.web.forms import local_path, referrer_path
from microblog.web.htmx import html, is_htmx, render
from microblog.web.pagination import cursor, page_of
from microblog.web.ratelimits import POST_USER, limited
from microblog.web.templating import here

blueprint = Blueprint("posts", __name__)

REPLIES_PER_PAGE = 50
DELETED = "deleted"  # the query parameter that says a post was just deleted


@blueprint.route("/posts", methods=["POST"])
@limited(POST_USER)
@login_required
async def create() -> Response:
    user = current_user()
    form = await request.form
    post = NewPost.parse(form, await request.files)
    next_path = local_path(form.get("next"))
    status = 422
    uploads = post.pictures.uploads
    if uploads and not post.errors:
        status = await post.pictures.check()
        if post.pictures.error:
            post.errors["pictures"] = post.pictures.error
    if not post.errors:
        mentioned = mentions(post.body)
        async with transaction() as conn:
            barrier = await _reply_barrier(conn, user.id, post.in_reply_to)
            post_id = (
                None
                if barrier
                else await queries.create_post(
                    conn,
                    user.id,
                    post.body,
                    hashtags(post.body),
                    mentioned,
                    post.in_reply_to,
                    picture_count=len(uploads),
                )
            )
            if barrier:
                post.errors["in_reply_to"], status = barrier, 403
            elif post_id is None:
                post.errors["in_reply_to"] = "The post you are replying to does not exist."
            else:
                if uploads:
                    pictures = await add_pictures(conn, post_id, uploads)
                    await enqueue_many(conn, prepare_picture, [{"picture_id": p} for p in pictures])
                if post.in_reply_to or mentioned:  # someone to tell
                    await enqueue(conn, post_created, {"post_id": post_id})
                view = await queries.post_view(conn, post_id, user.id)
                parent = await _replied_to_on_its_page(conn, post.in_reply_to, user.id)
    if post.errors:
        return await _refused(post, status, next_path)
    if is_htmx():
        # A reply lands among the replies under the post it answers, as the thread shows them.
        card = await render_cards([view], user, in_thread=post.in_reply_to is not None)
        return await html("_post_created.html", card=card, post=view, parent=parent, next=next_path)
    return redirect(next_path, 303)


@blueprint.errorhandler(RequestEntityTooLarge)
async def larger_than_any_post(_error: RequestEntityTooLarge) -> Response:
    """A post over the request limit (web/forms.py refuses it before any view runs), most
    likely for a photo straight from a phone, is refused with the form all the same."""
    if request.endpoint != "posts.create" or current_user() is None:
        return await error_response(413)
    post = NewPost(body="")
    size = too_large(request.content_length, exactly=False)
    post.errors["pictures"] = f"This post is larger than this site accepts. {size}"
    return await _refused(post, 413, local_path(request.args.get("next")))


@blueprint.route("/posts/<id:post_id>")
async def show(post_id: int) -> Response:
    viewer = current_user()
    viewer_id = viewer.id if viewer else None
    after = cursor("after") or 0
    async with reading() as conn:
        post = await queries.post_view(conn, post_id, viewer_id)
        if post is None:
            abort(404, "This post does not exist, or it was deleted.")
        barrier = (await relation(conn, viewer_id, post.author_id)).barrier(post.author_username)
        if barrier:
            abort(403, barrier)
        thread = await queries.ancestors(conn, post_id, viewer_id)
        replies = page_of(
            await queries.replies(conn, post_id, viewer_id, after, REPLIES_PER_PAGE + 1),
            REPLIES_PER_PAGE,
        )
    cards = {
        "thread_cards": await render_cards(thread, viewer, in_thread=True),
        "focus_card": await render_cards([post], viewer, focus=True, in_thread=True),
        "reply_cards": await render_cards(replies.rows, viewer, in_thread=True),
    }
    return await render(
        "post.html",
        "_replies.html",
        post=post,
        more_after=replies.rows[-1].id if replies.more else None,
        reply=NewPost(body="", in_reply_to=post.id),
        **cards,
    )


async def _refused(post: NewPost, status: int, next_path: str) -> Response:
    """The form again, with what was wrong: in place of the form for htmx, else as a page."""
    if is_htmx():
        response = await html("_compose.html", status, post=post, next=next_path)
        response.headers["HX-Retarget"] = "#compose"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return await html("compose.html", status, post=post, next=next_path)


async def _reply_barrier(
    conn: asyncpg.Connection, user_id: int, parent_id: int | None
) -> str | None:
    """Why the user cannot reply to the post: a block between them and its author."""
    parent = None if parent_id is None else await queries.post_view(conn, parent_id, user_id)
    if parent is None:
        return None  # no reply, or to a post that does not exist: create_post says so
    barrier = (await relation(conn, user_id, parent.author_id)).barrier(parent.author_username)
    return f"You cannot reply to this post. {barrier}" if barrier else None


def _check_deletable(author_id: int | None, user_id: int) -> None:
    if author_id is None:
        abort(404, "This post does not exist, or it was already deleted.")
    if author_id != user_id:
        abort(403, "Only the author of a post can delete it.")


@blueprint.route("/posts/<id:post_id>/delete", methods=["GET", "POST"])
@login_required
async def delete(post_id: int) -> Response:
    user = current_user()
    if request.method == "GET":  # a plain form asks first; htmx asks with hx-confirm
        async with connection() as conn:
            post = await queries.post_view(conn, post_id, user.id)
        _check_deletable(post.author_id if post else None, user.id)
        return await html("delete.html", post=post, next=referrer_path(f"/posts/{post_id}"))
    async with transaction() as conn:
        _check_deletable(await queries.post_author(conn, post_id), user.id)
        parent_id = await queries.delete_post(conn, post_id, user.id)
        parent = await _replied_to_on_its_page(conn, parent_id, user.id)
    # The post's own page is gone: the post it replied to, or home, comes instead. Compare
    # whole paths, as /posts/12 starts with /posts/1.
    gone = f"/posts/{post_id}"
    instead = f"/posts/{parent_id}" if parent_id else "/"
    if is_htmx():
        if urlsplit(here()).path == gone:
            response = Response("", status=200)
            response.headers["HX-Redirect"] = _saying_deleted(instead)
            return response
        if parent is None:
            return Response("", status=200)  # the post's element is swapped for nothing
        return await html("_replies_count.html", post=parent)
    next_path = local_path((await request.form).get("next"))
    if urlsplit(next_path).path == gone:
        next_path = instead
    return redirect(_saying_deleted(next_path), 303)


def _saying_deleted(path: str) -> str:
    """The page to go to, with the note that the post was deleted (base.html shows it)."""
    parts = urlsplit(path)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != DELETED]
    return urlunsplit(parts._replace(query=urlencode([*query, (DELETED, "1")])))


async def _replied_to_on_its_page(
    conn: asyncpg.Connection, parent_id: int | None, viewer_id: int
) -> queries.PostView | None:
    """The post a reply answers, when htmx asks from that post's own page, where it shows its
    count of replies above them: the new count is sent out of band. Elsewhere the post may not
    be on the page, and htmx reports an out-of-band element with nowhere to go as an error."""
    if parent_id is None or not is_htmx() or urlsplit(here()).path != f"/posts/{parent_id}":
        return None
    return await queries.post_view(conn, parent_id, viewer_id)


async def _toggle_like(post_id: int, *, liked: bool) -> Response:
    user = current_user()
    async with transaction() as conn:
        change = queries.like if liked else queries.unlike
        changed = await change(conn, user.id, post_id)
        if changed is None:
            abort(404, "This post does not exist, or it was deleted.")
        if liked and changed:
            await enqueue(conn, post_liked, {"post_id": post_id, "user_id": user.id})
        post = await queries.post_view(conn, post_id, user.id)
    if is_htmx():
        return await html("_like_button.html", post=post)
    return redirect(local_path((await request.form).get("next"), f"/posts/{post_id}"), 303)


@blueprint.route("/posts/<id:post_id>/like", methods=["POST"])
@login_required
async def like(post_id: int) -> Response:
    return await _toggle_like(post_id, liked=True)


@blueprint.route("/posts/<id:post_id>/unlike", methods=["POST"])
@login_required
async def unlike(post_id: int) -> Response:
    return await _toggle_like(post_id, liked=False)
