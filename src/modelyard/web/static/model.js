// Code sample tabs and copy buttons on the model page.
(() => {
  const tabs = document.querySelectorAll(".tab");
  for (const tab of tabs) {
    tab.addEventListener("click", () => {
      for (const t of tabs) {
        const active = t === tab;
        t.classList.toggle("active", active);
        t.setAttribute("aria-selected", String(active));
      }
      for (const panel of document.querySelectorAll(".sample")) {
        panel.hidden = panel.dataset.panel !== tab.dataset.tab;
      }
    });
  }
  const copied = (button) => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1200);
  };
  for (const button of document.querySelectorAll("[data-copy], [data-copy-from]")) {
    button.addEventListener("click", async () => {
      const from = button.dataset.copyFrom;
      const text = from ? document.getElementById(from).textContent : button.dataset.copy;
      try {
        await navigator.clipboard.writeText(text);
        copied(button);
      } catch {
        button.textContent = "Copy failed";
      }
    });
  }
})();
