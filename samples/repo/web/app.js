// Renders `ledgerlite balance` output ("  1234.56  Assets:Bank") as a table.
"use strict";

function parseBalances(text) {
  return text
    .split("\n")
    .map((line) => line.trim().match(/^(-?[\d.]+)\s+(\S.*)$/))
    .filter(Boolean)
    .map(([, amount, account]) => ({ account, amount: Number(amount) }));
}

function render(rows) {
  const body = document.querySelector("#report tbody");
  body.replaceChildren(
    ...rows.map(({ account, amount }) => {
      const tr = document.createElement("tr");
      tr.className = amount < 0 ? "negative" : "";
      for (const value of [account, amount.toFixed(2)]) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.appendChild(td);
      }
      return tr;
    })
  );
}

document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("input");
  input.addEventListener("input", () => render(parseBalances(input.value)));
});
