// Progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Relative times ("5m") rendered by the server drift as the page stays open: refresh them.
  function relative(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 45) return "just now";
    if (seconds < 3600) return Math.max(1, Math.round(seconds / 60)) + "m";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h";
    if (seconds < 7 * 86400) return Math.floor(seconds / 86400) + "d";
    return null; // older dates are absolute and do not change
  }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      var text = relative(new Date(el.getAttribute("datetime")));
      if (text) el.textContent = text;
    });
  }

  // Characters left, counted as code points like the server counts them, and worded as the
  // server words them (the characters_left macro in templates/macros.html).
  function charactersLeft(left) {
    var count = Math.abs(left);
    return count + (count === 1 ? " character" : " characters") + (left >= 0 ? " left" : " too many");
  }

  function updateCounter(textarea) {
    var counter = document.getElementById(textarea.id + "-count");
    if (!counter) return;
    var max = parseInt(textarea.getAttribute("data-max-length"), 10);
    var left = max - Array.from(textarea.value.trim()).length;
    counter.textContent = charactersLeft(left);
    counter.classList.toggle("over", left < 0);
  }

  function updateCounters(root) {
    (root || document).querySelectorAll("textarea[data-max-length]").forEach(updateCounter);
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches("textarea[data-max-length]")) updateCounter(event.target);
  });

  document.addEventListener("DOMContentLoaded", function () {
    updateCounters();
    setInterval(refreshTimes, 60000);
  });

  // The server counts what it sends back; counting again here keeps one wording. A compose
  // form swapped in out of band is not inside event.target, so every counter is recounted.
  document.addEventListener("htmx:afterSettle", function (event) {
    refreshTimes(event.target);
    updateCounters(document);
  });
})();
