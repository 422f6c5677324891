// trunkd status page: keep the token in this tab's sessionStorage, fetch
// the server-rendered view with it every two seconds, put it in place.
"use strict";
(function () {
  const KEY = "trunkd-token";
  const EVERY = 2000;
  const $ = (id) => document.getElementById(id);
  let timer = null;

  function showLogin(message) {
    clearTimeout(timer);
    $("login").hidden = false;
    $("forget").hidden = true;
    $("error").textContent = message || "";
    $("state").textContent = "enter a token to see the trunks";
  }

  async function refresh() {
    const token = sessionStorage.getItem(KEY);
    if (!token) {
      showLogin("");
      return;
    }
    try {
      const headers = { Authorization: "Bearer " + token };
      const org = new URLSearchParams(location.search).get("org");
      if (org) headers["X-Trunkd-Org"] = org; // /?org=acme: a token of several organizations names one
      const resp = await fetch("/status/view", { headers: headers, cache: "no-store" });
      const body = await resp.text();
      if (resp.status === 401 || resp.status === 403 || resp.status === 400) {
        sessionStorage.removeItem(KEY);
        showLogin("token refused: " + body.trim());
        return;
      }
      if (!resp.ok) {
        $("state").textContent = "trunkd answered " + resp.status + "; retrying";
      } else {
        $("live").innerHTML = body; // HTML escaped by trunkd's templates
        $("login").hidden = true;
        $("forget").hidden = false;
        $("state").textContent = "live";
      }
    } catch (e) {
      $("state").textContent = "trunkd unreachable; retrying";
    }
    timer = setTimeout(refresh, EVERY);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, $("token").value.trim());
      $("token").value = "";
      refresh();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      $("live").innerHTML = "";
      showLogin("");
    });
    refresh();
  });
})();
