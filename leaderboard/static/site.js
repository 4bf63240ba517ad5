// wdqa leaderboard: sortable tables and the case filter. Plain JS over the rendered rows: the
// site is opened from disk (file://), where fetching data files is blocked, so nothing is fetched.
"use strict";

function sortValue(row, col, type) {
  const cell = row.children[col];
  const raw = cell ? (cell.dataset.sort ?? cell.textContent.trim()) : "";
  if (type === "num") {
    const x = parseFloat(raw);
    return Number.isNaN(x) ? null : x;  // empty cells sort last in both directions
  }
  return raw.toLowerCase();
}

function sortTable(table, th) {
  const col = Array.from(th.parentNode.children).indexOf(th);
  const type = th.dataset.type || "text";
  // First click on a split's score column sorts best first; rank, false findings (lower is
  // better) and text columns start ascending.
  const startDesc = (th.dataset.key || "").startsWith("split:") || th.dataset.key === "score";
  const desc = th.classList.contains("asc") || th.classList.contains("desc")
    ? th.classList.contains("asc") : startDesc;
  th.parentNode.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
  th.classList.add(desc ? "desc" : "asc");
  // Each tbody sorts on its own: oracle rooflines stay apart from the ranked methods.
  table.querySelectorAll("tbody").forEach((body) => {
    const rows = Array.from(body.querySelectorAll("tr:not(.group)"));
    rows.sort((a, b) => {
      const x = sortValue(a, col, type), y = sortValue(b, col, type);
      if (x === null || y === null) return (x === null) - (y === null);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return desc ? -c : c;
    });
    rows.forEach((r) => body.appendChild(r));
  });
}

function applyCaseFilter() {
  const table = document.getElementById("cases");
  if (!table) return;
  const text = document.getElementById("filter-text").value.trim().toLowerCase();
  const split = document.getElementById("filter-split").value;
  const score = document.getElementById("filter-score").value;
  const rows = table.tBodies[0].rows;
  let shown = 0;
  for (const row of rows) {
    const ok = (!split || row.dataset.split === split)
      && (!score || row.dataset.score === score)
      && (!text || row.textContent.toLowerCase().includes(text));
    row.hidden = !ok;
    if (ok) shown += 1;
  }
  document.getElementById("filter-count").textContent = `${shown} of ${rows.length} cases`;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable th.sort").forEach((th) => {
    th.addEventListener("click", () => sortTable(th.closest("table"), th));
  });
  ["filter-text", "filter-split", "filter-score"].forEach((id) => {
    const el = document.getElementById(id);
    if (el) el.addEventListener("input", applyCaseFilter);
  });
});
