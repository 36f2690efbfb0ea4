// The preview page: fetch a demo request, POST it to the real hook endpoint, show the cards.
// Card fields are put in the page as text; only the detail is HTML, rendered by the server with
// raw HTML disabled (POST /preview/markdown).
"use strict";

(function () {
  const script = document.currentScript;
  const referralId = script.dataset.referral;
  const serviceByHook = JSON.parse(script.dataset.hooks || "{}");
  const $ = (id) => document.getElementById(id);
  const EXPLAIN = "vertebral-augmentation-cds/explain";
  let current = null;

  // Demo mode only: the service's own trace (?explain=true), per resource read, then the decision.
  function showExplanation(answer) {
    const trace = (answer.extension || {})[EXPLAIN];
    const lines = trace && Array.isArray(trace.lines) ? trace.lines : [];
    $("explain-lines").replaceChildren(...lines.map((line) => el("li", { text: line })));
    $("explain").hidden = !lines.length;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  async function renderDetails(cards) {
    const texts = cards.map((card) => card.detail || "");
    if (!texts.length) return [];
    const response = await fetch("/preview/markdown", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ markdown: texts }),
    });
    if (!response.ok) throw new Error("could not render card details (" + response.status + ")");
    return (await response.json()).html;
  }

  // CDS Hooks 2.0.1 feedback to the service that issued the card; the answer is shown under the card.
  async function sendFeedback(serviceId, entry, where) {
    const body = { feedback: [{ card: entry.card, outcome: entry.outcome, outcomeTimestamp: new Date().toISOString(),
      ...(entry.acceptedSuggestions ? { acceptedSuggestions: entry.acceptedSuggestions } : {}),
      ...(entry.overrideReason ? { overrideReason: entry.overrideReason } : {}) }] };
    const node = el("p", { class: "feedback-answer muted", text: "Sending feedback…" });
    where.append(node);
    try {
      const response = await fetch("/cds-services/" + encodeURIComponent(serviceId) + "/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      node.dataset.status = String(response.status);
      node.textContent = "Feedback " + entry.outcome + " sent: HTTP " + response.status + " " + JSON.stringify(answer);
    } catch (error) {
      node.dataset.status = "error";
      node.textContent = "Feedback could not be sent: " + error.message;
    }
  }

  function suggestionView(card, suggestion) {
    const outcome = el("div", { class: "suggestion-outcome", hidden: "" });
    const button = el("button", {
      type: "button",
      class: "cds-suggestion" + (suggestion.isRecommended ? " recommended" : ""),
      text: suggestion.label,
    });
    button.addEventListener("click", () => {
      const actions = (suggestion.actions || []).map((action) => {
        const what = action.resource ? action.resource.resourceType : action.resourceId || "";
        return action.type + " " + what + (action.description ? ": " + action.description : "");
      });
      outcome.textContent = "Accepted. The EHR would now: " + actions.join("; ");
      const resources = (suggestion.actions || []).filter((a) => a.resource).map((a) => a.resource);
      if (resources.length) {
        outcome.append(el("pre", { text: JSON.stringify(resources.length === 1 ? resources[0] : resources, null, 2) }));
      }
      outcome.hidden = false;
      button.disabled = true;
      sendFeedback(card.serviceId, { card: card.uuid, outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }] }, outcome);
    });
    return el("div", { class: "suggestion" }, button, outcome);
  }

  function overrideView(card, cardNode) {
    const reasons = card.overrideReasons || [];
    const select = el("select", { class: "override-reason", "aria-label": "Reason for dismissing" });
    select.append(el("option", { value: "", text: "Dismiss: choose a reason…" }));
    for (const reason of reasons) select.append(el("option", { value: reason.code, text: reason.display || reason.code }));
    const dismiss = el("button", { type: "button", class: "dismiss", text: "Dismiss" });
    dismiss.addEventListener("click", () => {
      const chosen = select.options[select.selectedIndex];
      const reason = reasons.find((r) => r.code === select.value);
      cardNode.classList.add("dismissed");
      dismiss.disabled = true;
      select.disabled = true;
      const note = cardNode.querySelector(".dismiss-note");
      note.textContent = "Dismissed" + (reason ? " with reason: " + chosen.textContent : " without a reason") + ".";
      const entry = { card: card.uuid, outcome: "overridden" };
      if (reason) entry.overrideReason = { reason: { system: reason.system, code: reason.code, display: reason.display } };
      sendFeedback(card.serviceId, entry, note.parentNode);
    });
    return el("div", { class: "override" }, select, dismiss, el("p", { class: "dismiss-note muted" }));
  }

  function cardView(card, detailHtml) {
    const indicator = ["info", "warning", "critical"].includes(card.indicator) ? card.indicator : "info";
    const node = el("article", { class: "cds-card indicator-" + indicator, "data-indicator": indicator });
    node.append(el("div", { class: "card-head" },
      el("span", { class: "indicator-badge", text: indicator }),
      el("h3", { class: "card-summary", text: card.summary || "" })));
    const detail = el("div", { class: "card-detail" });
    detail.innerHTML = detailHtml; // server-rendered from Markdown with raw HTML disabled
    node.append(detail);
    for (const suggestion of card.suggestions || []) node.append(suggestionView(card, suggestion));
    const links = el("ul", { class: "card-links" });
    for (const link of card.links || []) {
      const href = safeUrl(link.url);
      if (href) links.append(el("li", {}, el("a", { href: href, target: "_blank", rel: "noopener", text: link.label || href })));
    }
    if (links.children.length) node.append(links);
    const source = card.source || {};
    const sourceHref = source.url ? safeUrl(source.url) : null;
    node.append(el("p", { class: "card-source muted" }, "Source: ",
      sourceHref ? el("a", { href: sourceHref, target: "_blank", rel: "noopener", text: source.label || sourceHref })
                 : el("span", { text: source.label || "" })));
    if ((card.overrideReasons || []).length) node.append(overrideView(card, node));
    return node;
  }

  async function callService(scenario, serviceId) {
    for (const button of document.querySelectorAll("button.hook")) {
      button.setAttribute("aria-pressed", String(button.dataset.service === serviceId));
    }
    const cards = $("cards");
    cards.dataset.state = "loading";
    cards.replaceChildren();
    $("explain").hidden = true;
    $("call-status").textContent = "Calling " + serviceId + "…";
    try {
      const requestResponse = await fetch("/preview/requests/" + encodeURIComponent(scenario) + "?service=" + encodeURIComponent(serviceId));
      const hookRequest = await requestResponse.json();
      if (!requestResponse.ok) throw new Error(JSON.stringify(hookRequest));
      const url = "/cds-services/" + serviceId + "?explain=true";
      const started = performance.now();
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(hookRequest),
      });
      const answer = await response.json();
      const ms = Math.round(performance.now() - started);
      $("raw-url").textContent = "POST " + url;
      $("raw-request").textContent = JSON.stringify(hookRequest, null, 2);
      $("raw-status").textContent = "HTTP " + response.status + ", " + ms + " ms";
      $("raw-response").textContent = JSON.stringify(answer, null, 2);
      $("call-status").textContent = hookRequest.hook + " → HTTP " + response.status + " in " + ms + " ms";
      showExplanation(answer);
      if (!response.ok) {
        const issue = (answer.issue || [])[0] || {};
        cards.append(el("p", { class: "call-error", text: "Error: " + (issue.diagnostics || response.status) }));
        cards.dataset.state = "error";
        return;
      }
      const list = answer.cards || [];
      if (!list.length) {
        cards.append(el("p", { id: "no-cards", class: "no-cards", text: "No cards: the service has nothing to say for this " + hookRequest.hook + " call." }));
      } else {
        const html = await renderDetails(list);
        list.forEach((card, i) => cards.append(cardView({ ...card, serviceId: serviceId }, html[i])));
      }
      cards.dataset.state = "done";
    } catch (error) {
      cards.append(el("p", { class: "call-error", text: "Error: " + error.message }));
      cards.dataset.state = "error";
    }
  }

  for (const button of document.querySelectorAll("button.patient")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll("button.patient[aria-current]")) other.removeAttribute("aria-current");
      button.setAttribute("aria-current", "true");
      current = button.dataset.scenario;
      $("empty-state").hidden = true;
      $("chart").hidden = false;
      $("chart-title").textContent = button.dataset.patientName;
      $("banner-age").textContent = button.dataset.age;
      $("banner-sex").textContent = button.dataset.sex;
      $("banner-scenario").textContent = "scenario " + current;
      $("chart-description").textContent = button.querySelector(".patient-description").textContent;
      callService(current, serviceByHook[button.dataset.hook] || referralId);
    });
  }
  for (const hook of document.querySelectorAll("button.hook")) {
    hook.addEventListener("click", () => { if (current) callService(current, hook.dataset.service); });
  }
  $("raw-toggle").addEventListener("change", (event) => { $("raw").hidden = !event.target.checked; });
})();
