//! `GET /`: one page that lists the served models and lets a person try one: a form with the
//! model's columns (or an image upload) that posts to the model's predict endpoint and shows
//! the answer. `?model=NAME&COLUMN=VALUE...` fills a form, `&submit=1` sends it (links that
//! reproduce a prediction; the browser test uses them).

use serde_json::Value;

/// The page, with each model's `kiln` metadata embedded for the script.
pub fn render(models: &[Value]) -> String {
    // `</` cannot end the script early inside a JSON string.
    let data = serde_json::to_string(models)
        .expect("JSON serializes")
        .replace("</", "<\\/");
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kiln serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
section {{ border: 1px solid #ccc; border-radius: 6px; padding: 0 1rem 1rem; margin: 1rem 0; }}
label {{ display: inline-block; min-width: 12rem; }} input {{ margin: 2px 0; }}
pre {{ background: #f4f4f4; padding: .5rem; white-space: pre-wrap; }} code {{ font-size: 90%; }}
</style></head><body>
<h1>kiln serve</h1>
<p>Models served here, with the TensorFlow Serving REST API: <code>POST /v1/models/NAME:predict</code>
with <code>{{"instances": [...]}}</code>. Fill a form to try one.</p>
<div id="models"></div>
<script id="model-data" type="application/json">{data}</script>
<script>
const models = JSON.parse(document.getElementById("model-data").textContent);
const params = new URLSearchParams(location.search);
const root = document.getElementById("models");
function el(tag, attrs, text) {{
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {{}})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}}
function fileToBase64(file) {{
  return new Promise((ok, fail) => {{
    const r = new FileReader();
    r.onload = () => ok(String(r.result).split(",")[1]);
    r.onerror = fail;
    r.readAsDataURL(file);
  }});
}}
for (const m of models) {{
  const sec = el("section", {{id: "model-" + m.name}});
  sec.append(el("h2", {{}}, m.name));
  sec.append(el("p", {{}}, m.task + (m.classes ? " into " + m.classes.join(", ") : " of " + m.target) + " — run " + m.run));
  const form = el("form", {{"data-model": m.name}});
  // By column name; form.elements[name] would take "0" as a position and "length" as its size.
  const fields = new Map();
  if (m.image) {{
    const l = el("label", {{}}, "image (" + m.image.width + "×" + m.image.height + ")");
    form.append(l, el("input", {{type: "file", name: "image", accept: "image/*"}}), el("br"));
  }} else {{
    for (const c of m.inputs) {{
      const l = el("label", {{for: m.name + "-" + c.name}}, c.name + " (" + c.type + ")");
      const attrs = {{id: m.name + "-" + c.name, name: c.name}};
      if (c.type === "number") {{ attrs.type = "number"; attrs.step = "any"; }}
      if (c.values) attrs.list = m.name + "-" + c.name + "-values";
      const input = el("input", attrs);
      fields.set(c.name, input);
      form.append(l, input, el("br"));
      if (c.values) {{
        const dl = el("datalist", {{id: attrs.list}});
        for (const v of c.values) dl.append(el("option", {{value: v}}));
        form.append(dl);
      }}
    }}
  }}
  form.append(el("button", {{type: "submit"}}, "Predict"));
  const out = el("pre", {{class: "result"}});
  sec.append(form, out);
  root.append(sec);
  form.addEventListener("submit", async (ev) => {{
    ev.preventDefault();
    let instance;
    if (m.image) {{
      const f = form.querySelector("input[type=file]").files[0];
      if (!f) {{ out.textContent = "choose an image file"; return; }}
      instance = {{b64: await fileToBase64(f)}};
    }} else {{
      instance = {{}};
      for (const c of m.inputs) {{
        const v = fields.get(c.name).value;
        instance[c.name] = c.type === "number" ? (v.trim() === "" ? null : Number(v)) : v;
      }}
    }}
    out.textContent = "…";
    const r = await fetch("/v1/models/" + encodeURIComponent(m.name) + ":predict", {{
      method: "POST", headers: {{"content-type": "application/json"}},
      body: JSON.stringify({{instances: [instance]}})
    }});
    const body = await r.json();
    if (!r.ok) {{ out.textContent = "error " + r.status + ": " + body.error; return; }}
    const p = body.predictions[0];
    out.textContent = (p.class !== undefined ? "class: " + p.class + "\n" : "") + JSON.stringify(p, null, 1);
    out.dataset.done = "1";
  }});
  if (params.get("model") === m.name && !m.image) {{
    for (const c of m.inputs) if (params.has(c.name)) fields.get(c.name).value = params.get(c.name);
    if (params.get("submit") === "1") form.requestSubmit();
  }}
}}
if (!models.length) root.append(el("p", {{}}, "No models."));
</script>
</body></html>
"#
    )
}
