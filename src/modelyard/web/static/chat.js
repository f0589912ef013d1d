// The chat room: one column per picked model, each streaming its answer over SSE.
(() => {
  const KEY = "modelyard.appKey";
  const keyInput = document.getElementById("api-key");
  const columns = document.getElementById("chat-columns");
  const empty = document.getElementById("chat-empty");
  const form = document.getElementById("composer");
  const message = document.getElementById("message");
  const picks = document.getElementById("model-picks");
  const maxTokens = document.getElementById("max-tokens");
  const panels = new Map(); // model id → {el, log, history}

  keyInput.value = localStorage.getItem(KEY) || "";
  keyInput.addEventListener("input", () => localStorage.setItem(KEY, keyInput.value.trim()));

  // ?model= picks that model alone, if the room offers it (embedding models it does not).
  const wanted = new URLSearchParams(location.search).get("model");
  const boxes = Array.from(picks.querySelectorAll("input"));
  if (wanted && boxes.some((box) => box.value === wanted)) {
    for (const box of boxes) box.checked = box.value === wanted;
  }

  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const selected = () =>
    Array.from(picks.querySelectorAll("input:checked")).map((box) => box.value);

  const panelFor = (model) => {
    if (!panels.has(model)) {
      const panel = el("section", "chat-panel card");
      panel.dataset.model = model;
      panel.append(el("h2", "chat-model", model));
      const log = el("div", "chat-log");
      panel.append(log);
      columns.append(panel);
      panels.set(model, { el: panel, log, history: [] });
    }
    return panels.get(model);
  };

  const syncPanels = () => {
    const models = selected();
    for (const [model, panel] of panels) {
      panel.el.hidden = !models.includes(model);
    }
    for (const model of models) panelFor(model);
    empty.hidden = models.length > 0 && panels.size > 0 && columns.querySelector(".turn") !== null;
  };
  picks.addEventListener("change", syncPanels);

  const formatCost = (cost) => (cost === undefined || cost === null ? "—" : `$${Number(cost).toFixed(6)}`);

  async function readSse(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const frames = buffer.split(/\r?\n\r?\n/);
      buffer = frames.pop();
      for (const frame of frames) {
        const data = frame
          .split(/\r?\n/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data && data !== "[DONE]") onEvent(JSON.parse(data));
      }
    }
  }

  async function ask(model, text) {
    const panel = panelFor(model);
    panel.history.push({ role: "user", content: text });
    const turn = el("div", "turn");
    turn.append(el("div", "bubble user", text));
    const answer = el("div", "bubble assistant streaming");
    const meta = el("div", "meta", "waiting…");
    turn.append(answer, meta);
    panel.log.append(turn);
    const started = performance.now();
    let ttft = null;
    let usage = null;
    let content = "";
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: `Bearer ${keyInput.value.trim()}`,
          "X-Title": "modelyard chat room",
        },
        body: JSON.stringify({
          model,
          messages: panel.history,
          stream: true,
          max_tokens: Number(maxTokens.value) || undefined,
        }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body.error?.message || `HTTP ${response.status}`);
      }
      await readSse(response, (chunk) => {
        if (chunk.error) throw new Error(chunk.error.message || "stream error");
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          if (ttft === null) ttft = performance.now() - started;
          content += delta;
          answer.textContent = content;
          meta.textContent = `streaming · first token ${Math.round(ttft)} ms`;
        }
        if (chunk.usage) usage = chunk.usage;
      });
      panel.history.push({ role: "assistant", content });
      const tokens = usage ? `${usage.prompt_tokens} in · ${usage.completion_tokens} out` : "tokens —";
      const first = ttft === null ? "—" : `${Math.round(ttft)} ms`;
      meta.textContent = `${tokens} · ${formatCost(usage?.cost)} · first token ${first}`;
      meta.classList.add("done");
    } catch (error) {
      panel.history.pop();
      answer.classList.add("error");
      answer.textContent = String(error.message || error);
      meta.textContent = "failed";
    } finally {
      answer.classList.remove("streaming");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = message.value.trim();
    const models = selected();
    if (!text || models.length === 0) return;
    message.value = "";
    syncPanels();
    empty.hidden = true;
    for (const model of models) ask(model, text);
  });
  message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.getElementById("clear").addEventListener("click", () => {
    panels.clear();
    columns.replaceChildren();
    empty.hidden = false;
    syncPanels();
  });
  syncPanels();
  empty.hidden = false;
})();
