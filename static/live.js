// Live updates for logged-in pages, over the server-sent events of /events. Without this file
// (or without JavaScript) every page is as it was rendered, and a reload shows what is new.
//
// - unread notifications: the count in the navigation follows;
// - the home timeline: a bar says how many new posts wait; a click, or the "." key, shows them
//   (nothing moves under the reader's eyes before they ask);
// - a thread's page: new replies are added after the others;
// - like and reply counts on the cards shown follow.
//
// The browser's EventSource reconnects by itself after a network error, or after the server
// ended the stream (an instance draining), sending the id of the last event it had
// (Last-Event-ID), and the server replays what was missed. When the server refuses a stream
// (an error status: no instance could take it), EventSource gives up; this script then opens a
// new one after a pause, with ?since= the last id seen.
(function () {
  "use strict";

  var RETRY_MIN_MS = 1000;
  var RETRY_MAX_MS = 30000;
  var REPLIES_WAIT_MS = 250; // replies that arrive together are fetched together

  var source = null;
  var baseUrl = null;
  var lastId = null;
  var retryMs = RETRY_MIN_MS;
  var retryTimer = null;
  var stopped = false;

  function withSince(url, since) {
    if (since === null) return url;
    var parts = url.split("?");
    var query = (parts[1] || "").split("&").filter(function (pair) {
      return pair && pair.indexOf("since=") !== 0;
    });
    query.unshift("since=" + encodeURIComponent(since));
    return parts[0] + "?" + query.join("&");
  }

  function connect(url) {
    source = new EventSource(url);
    source.addEventListener("open", function () { retryMs = RETRY_MIN_MS; });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) later();
    });
    on("unread", showUnread);
    on("post", newPost);
    on("counts", showCounts);
    on("reload", offerReload);
    source.addEventListener("signed-out", stop);
  }

  function on(type, handle) {
    source.addEventListener(type, function (event) {
      if (event.lastEventId) lastId = event.lastEventId;
      handle(JSON.parse(event.data));
    });
  }

  function later() {
    close();
    if (stopped || retryTimer) return;
    var wait = retryMs / 2 + Math.random() * retryMs / 2;
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    retryTimer = setTimeout(function () {
      retryTimer = null;
      if (!stopped) connect(withSince(baseUrl, lastId));
    }, wait);
  }

  function close() {
    if (source) source.close();
    source = null;
  }

  function stop() {
    stopped = true;
    close();
  }

  // --- the count of unread notifications ------------------------------------------------

  function showUnread(data) {
    var link = document.querySelector('.nav-links a[href="/notifications"]');
    if (!link) return;
    var badge = link.querySelector(".badge");
    if (!data.unread) {
      if (badge) badge.remove();
      return;
    }
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "badge";
      link.append(" ", badge);
    }
    badge.textContent = String(data.unread);
    badge.setAttribute("aria-label", data.unread + " unread");
  }

  // --- like and reply counts ------------------------------------------------------------

  function plural(count, one, many) {
    return count + " " + (count === 1 ? one : many);
  }

  function showCounts(data) {
    var replies = document.getElementById("post-" + data.post + "-replies");
    if (replies) {
      replies.querySelector(".count").textContent = String(data.replies);
      replies.setAttribute("aria-label", plural(data.replies, "reply", "replies") + ", open the thread");
    }
    var like = document.getElementById("post-" + data.post + "-like");
    if (like) {
      like.querySelector(".count").textContent = String(data.likes);
      var verb = like.getAttribute("aria-pressed") === "true" ? "Unlike" : "Like";
      like.setAttribute("aria-label", verb + " (" + plural(data.likes, "like", "likes") + ")");
    }
  }

  // --- the bar above the page -----------------------------------------------------------

  var bar = null;
  var barAction = null;

  function showBar(text, action) {
    if (!bar) {
      bar = document.createElement("div");
      bar.className = "live-bar";
      bar.setAttribute("role", "status");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button small";
      button.addEventListener("click", function () { if (barAction) barAction(); });
      bar.append(button);
      document.body.append(bar);
    }
    bar.hidden = false;
    bar.firstChild.textContent = text;
    barAction = action;
  }

  function hideBar() {
    if (bar) bar.hidden = true;
    barAction = null;
  }

  function offerReload() {
    showBar("Some updates were missed. Reload the page", function () { location.reload(); });
  }

  // "." shows the new posts, as on other microblogs; not while typing.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "." || !barAction || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    event.preventDefault();
    barAction();
  });

  // --- new posts on the home timeline ---------------------------------------------------

  var waiting = {}; // ids of new posts not shown yet
  var waitingCount = 0;

  function newPost(data) {
    var thread = threadId();
    if (thread !== null) {
      if (data.reply_to === thread) fetchRepliesSoon();
      return;
    }
    if (!document.getElementById("timeline") || document.getElementById("post-" + data.post)) return;
    if (waiting[data.post]) return;
    waiting[data.post] = true;
    waitingCount += 1;
    showBar("Show " + plural(waitingCount, "new post", "new posts"), showNewPosts);
  }

  function fragment(url) {
    return fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html;
        return template.content;
      });
  }

  function posts(root) {
    return Array.prototype.slice.call(root.querySelectorAll("article.post"));
  }

  // Posts that arrived while the page was being fetched may be on it, or may wait still.
  function forgetShown() {
    Object.keys(waiting).forEach(function (id) {
      if (document.getElementById("post-" + id)) delete waiting[id];
    });
    waitingCount = Object.keys(waiting).length;
    if (waitingCount) showBar("Show " + plural(waitingCount, "new post", "new posts"), showNewPosts);
  }

  function showNewPosts() {
    var timeline = document.getElementById("timeline");
    hideBar();
    fragment("/").then(function (content) {
      var shown = posts(timeline);
      var top = shown.length ? shown[0].id : null;
      var fresh = posts(content);
      var overlap = fresh.some(function (post) { return post.id === top; });
      var added;
      if (top === null || !overlap) {
        // More new posts than a page holds: the timeline starts again from the newest.
        timeline.replaceChildren(content);
        added = posts(timeline);
      } else {
        added = [];
        for (var i = 0; i < fresh.length && fresh[i].id !== top; i += 1) {
          if (!document.getElementById(fresh[i].id)) added.push(fresh[i]);
        }
        timeline.prepend.apply(timeline, added);
      }
      settle(timeline);
      forgetShown();
      if (added.length) {
        added[0].setAttribute("tabindex", "-1");
        added[0].focus();
      }
    }).catch(forgetShown);
  }

  // --- new replies on a thread's page ---------------------------------------------------

  var repliesTimer = null;

  function threadId() {
    var match = /[?&]thread=(\d+)/.exec(baseUrl);
    return match ? Number(match[1]) : null;
  }

  function fetchRepliesSoon() {
    if (repliesTimer) return;
    repliesTimer = setTimeout(fetchReplies, REPLIES_WAIT_MS);
  }

  function fetchReplies() {
    repliesTimer = null;
    var replies = document.getElementById("replies");
    // Replies not loaded yet come with the next page, as the reader scrolls to them.
    if (!replies || replies.querySelector("a.more")) return;
    var shown = posts(replies);
    var after = shown.length ? shown[shown.length - 1].id.replace("post-", "") : null;
    var url = "/posts/" + threadId() + (after ? "?after=" + after : "");
    fragment(url).then(function (content) {
      Array.prototype.slice.call(content.children).forEach(function (node) {
        if (node.id && document.getElementById(node.id)) node.remove();
      });
      replies.append(content);
      settle(replies);
    }).catch(function () { /* the next reply, or a reload, brings it */ });
  }

  // What htmx does for what it swaps in itself: the new cards' forms and links are htmx's.
  function settle(element) {
    if (window.htmx) window.htmx.process(element);
  }

  // --- start, and leave ------------------------------------------------------------------

  function start() {
    baseUrl = document.body.getAttribute("data-live-events");
    if (!baseUrl || !window.EventSource) return;
    var since = /[?&]since=(\d+)/.exec(baseUrl);
    lastId = since ? since[1] : null;
    connect(baseUrl);
  }

  // A page kept in the back-forward cache must not hold a stream; shown again, it resumes.
  window.addEventListener("pagehide", close);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !stopped && baseUrl) connect(withSince(baseUrl, lastId));
  });

  document.addEventListener("DOMContentLoaded", start);
})();
