// Client-side search over the model cards: every word must appear in the card's text.
(() => {
  const input = document.getElementById("model-search");
  const cards = Array.from(document.querySelectorAll("#model-list .model-card"));
  const none = document.getElementById("no-match");
  const apply = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards) {
      const match = words.every((w) => card.dataset.search.includes(w));
      card.hidden = !match;
      if (match) shown += 1;
    }
    none.hidden = shown > 0;
  };
  input.addEventListener("input", apply);
  apply();
})();
