// The API reference page (served as /docs/app.js: the page carries no inline
// script, so its Content-Security-Policy can refuse any).
"use strict";
const tokenInput = document.getElementById("token");
// The token stays in this tab only: sessionStorage, never a cookie or the URL.
tokenInput.value = sessionStorage.getItem("hubwright-token") || "";
tokenInput.addEventListener("input", () => sessionStorage.setItem("hubwright-token", tokenInput.value));

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function resolve(doc, schema) {
  while (schema && schema.$ref) schema = schema.$ref.split("/").slice(1).reduce((at, part) => at[part], doc);
  return schema || {};
}

// A starting body for "try it": each property's example, default or a placeholder.
function example(doc, schema, depth = 0) {
  schema = resolve(doc, schema);
  if (schema.example !== undefined) return schema.example;
  if (schema.default !== undefined) return schema.default;
  if (depth > 4) return null;
  const type = Array.isArray(schema.type) ? schema.type.find(t => t !== "null") : schema.type;
  if (schema.enum) return schema.enum[0];
  if (schema.oneOf || schema.anyOf) return example(doc, (schema.oneOf || schema.anyOf)[0], depth + 1);
  if (type === "object" || schema.properties) {
    const out = {};
    for (const [name, prop] of Object.entries(schema.properties || {})) out[name] = example(doc, prop, depth + 1);
    return out;
  }
  if (type === "array") return [];
  if (type === "integer" || type === "number") return 0;
  if (type === "boolean") return false;
  return "";
}

function schemaTable(doc, schema) {
  schema = resolve(doc, schema);
  const required = new Set(schema.required || []);
  const rows = Object.entries(schema.properties || {}).map(([name, prop]) => {
    const resolved = resolve(doc, prop);
    const type = prop.$ref ? prop.$ref.split("/").pop() : [].concat(resolved.type || "object").join(" | ");
    return el("tr", {}, el("td", { class: "path" }, name + (required.has(name) ? " *" : "")),
      el("td", {}, type), el("td", {}, resolved.description || prop.description || ""));
  });
  return rows.length ? el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "meaning")), ...rows) : el("span");
}

function operation(doc, path, method, op) {
  const params = (op.parameters || []).map(p => resolve(doc, p));
  const inputs = {};
  const paramRows = params.map(p => {
    inputs[p.name] = el("input", { class: "param", placeholder: p.required ? "required" : "optional" });
    return el("tr", {}, el("td", { class: "path" }, p.name), el("td", {}, p.in), el("td", {}, p.description || ""), el("td", {}, inputs[p.name]));
  });
  const bodySchema = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  const bodyInput = bodySchema ? el("textarea", {}, JSON.stringify(example(doc, bodySchema.schema), null, 2)) : null;
  const result = el("div");
  const send = el("button", {}, "Send");
  send.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const p of params) {
      const value = inputs[p.name].value;
      if (!value) continue;
      if (p.in === "path") url = url.replace("{" + p.name + "}", encodeURIComponent(value));
      else if (p.in === "query") query.set(p.name, value);
      else if (p.in === "header") headers[p.name] = value;
    }
    if (query.toString()) url += "?" + query;
    if (tokenInput.value) headers.Authorization = "Bearer " + tokenInput.value;
    const init = { method: method.toUpperCase(), headers };
    if (bodyInput) { headers["Content-Type"] = "application/json"; init.body = bodyInput.value; }
    result.replaceChildren(el("p", { class: "muted" }, "Sending…"));
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON: show as is */ }
      result.replaceChildren(
        el("p", {}, el("span", { class: "status" }, response.status + " " + response.statusText), " ",
          el("span", { class: "muted" }, response.headers.get("content-type") || "")),
        el("pre", {}, shown));
    } catch (err) {
      result.replaceChildren(el("p", { class: "status" }, "Request failed: " + err));
    }
  });
  const responses = Object.entries(op.responses || {}).map(([status, response]) =>
    el("tr", {}, el("td", { class: "path" }, status), el("td", {}, resolve(doc, response).description || "")));
  return el("details", { class: "op", id: op.operationId || "" },
    el("summary", {}, el("span", { class: "method " + method }, method), el("span", { class: "path" }, path), el("span", { class: "muted" }, op.summary || "")),
    el("div", { class: "body" },
      op.description ? el("p", {}, op.description) : el("span"),
      paramRows.length ? el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "meaning"), el("th", {}, "value")), ...paramRows) : el("span"),
      bodySchema ? el("div", {}, el("h4", {}, "Body"), schemaTable(doc, bodySchema.schema), bodyInput) : el("span"),
      el("h4", {}, "Responses"), el("table", {}, ...responses),
      send, result));
}

async function render() {
  const main = document.getElementById("main");
  const doc = await (await fetch("/v1/openapi.json")).json();
  const sections = new Map();
  for (const tag of doc.tags || []) sections.set(tag.name, [el("h2", {}, tag.name), el("p", { class: "muted" }, tag.description || "")]);
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags || ["other"])[0];
      if (!sections.has(tag)) sections.set(tag, [el("h2", {}, tag)]);
      sections.get(tag).push(operation(doc, path, method, op));
    }
  }
  main.replaceChildren(el("p", {}, doc.info.description || "", " ", el("span", { class: "muted" }, "Version " + doc.info.version)),
    ...[...sections.values()].flat());
}
render().catch(err => { document.getElementById("main").textContent = "Could not load the API document: " + err; });
