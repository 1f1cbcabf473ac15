// Plain HTML tables and definition lists from rows of text.

export function table(caption, head, rows, { rowHeads = true } = {}) {
  const node = document.createElement("table");
  node.createCaption().textContent = caption;
  const tr = node.createTHead().insertRow();
  for (const name of head) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    tr.append(th);
  }
  const body = node.createTBody();
  if (rows.length === 0) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = head.length;
    cell.textContent = "None.";
  }
  for (const row of rows) {
    const line = body.insertRow();
    row.forEach((value, i) => {
      const cell = document.createElement(i === 0 && rowHeads ? "th" : "td");
      if (i === 0 && rowHeads) cell.scope = "row";
      cell.textContent = value;
      line.append(cell);
    });
  }
  return node;
}

export function definitions(title, pairs) {
  const box = document.createElement("div");
  box.className = "card plain";
  const h = document.createElement("h3");
  h.textContent = title;
  const list = document.createElement("dl");
  list.className = "figures";
  for (const [name, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
  box.append(h, list);
  return box;
}
