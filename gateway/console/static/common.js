// What every console page shares: elements whose text is set as text (never as HTML), and
// calls to the console's API carrying the signed-in agent's CSRF token.
"use strict";
window.ConsoleKit = (function () {
  let csrf = "";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function api(method, path, body) {
    const opts = { method, headers: {}, credentials: "same-origin" };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    let data = {};
    try { data = await resp.json(); } catch (e) { data = { error: resp.statusText }; }
    return { ok: resp.ok, status: resp.status, data };
  }

  return { el, api, setCsrf: (token) => { csrf = token || ""; } };
})();
