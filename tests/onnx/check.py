#!/usr/bin/env python3
"""Check an ONNX model written by `kiln export` with the consumer users run it in: onnx's
checker, then onnxruntime on the same inputs `kiln predict --proba --format jsonl` read, at
batch 1 and in batches of 1,000, against kiln's outputs.

Usage: check.py MODEL.onnx INPUT PREDICTIONS.jsonl [--tolerance 1e-5]
INPUT is the CSV kiln predicted from (columns matched by the model's feature_names), or, for
an image model, ignored: the image paths come from the predictions. Prints one JSON line;
exits 1 when an output differs by more than the tolerance.
"""
import csv
import json
import re
import sys
import unicodedata

import numpy as np
import onnx
import onnxruntime as ort


MISSING = ("", "NA", "N/A", "NaN", "nan", "null", "?")


def invisible(c):
    """Characters kiln drops before tokenizing: zero-width and direction marks, the soft
    hyphen, word joiners, the byte-order mark, control characters other than whitespace."""
    o = ord(c)
    if o == 0xAD or 0x200B <= o <= 0x200F or 0x202A <= o <= 0x202E or 0x2060 <= o <= 0x2064 or o == 0xFEFF:
        return True
    return unicodedata.category(c) == "Cc" and not c.isspace()


def tokenize(text, tokenizer, lowercase):
    """kiln's tokenizer as the README states it: NFKC, invisible characters dropped,
    lower-cased when asked; `word`: runs of letters and digits, every other visible character
    a token of its own; `char`: every character."""
    text = "".join(c for c in unicodedata.normalize("NFKC", text) if not invisible(c))
    if lowercase:
        text = text.lower()
    if tokenizer == "char":
        return list(text)
    return re.findall(r"[^\W_]+|[^\w\s]|_", text)


def token_ids(cells, column):
    """A text column's cells as the model's int64 input: ids by vocabulary index (1 for a
    token not in it), real tokens first, then 0s, `max_len` per row."""
    index = {t: i for i, t in enumerate(column["vocab"])}
    out = np.zeros((len(cells), column["max_len"]), dtype=np.int64)
    for r, cell in enumerate(cells):
        if cell.strip() in MISSING:
            continue
        ids = [index.get(t, 1) for t in tokenize(cell, column["tokenizer"], column["lowercase"])]
        ids = ids[:column["max_len"]]
        out[r, :len(ids)] = ids
    return out


def table(path, meta):
    """The model's inputs from a CSV: `features` (numbers, NaN for a missing cell), one
    string input per category column and one int64 input of token ids per text column."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cell = lambda s: float(s) if s.strip() not in MISSING else np.nan
    names = json.loads(meta["feature_names"])
    inputs = {}
    if names:
        inputs["features"] = np.array([[cell(r[n]) for n in names] for r in rows], dtype=np.float32)
    for c in json.loads(meta.get("category_inputs", "[]")):
        inputs[c] = np.array([r[c] for r in rows], dtype=object)
    for c in json.loads(meta.get("text_inputs", "[]")):
        inputs[c] = token_ids([r[c] for r in rows], json.loads(meta[f"text_column.{c}"]))
    return inputs


def images(paths, channels, height, width):
    from PIL import Image
    out = []
    for p in paths:
        img = Image.open(p).convert("L" if channels == 1 else "RGB")
        if img.size != (width, height):
            sys.exit(f"{p}: {img.size}, the model takes {width}x{height}")
        a = np.asarray(img, dtype=np.float32).reshape(height, width, channels)
        out.append(a.transpose(2, 0, 1))
    return np.stack(out)


def main():
    model_path, input_path, preds_path = sys.argv[1:4]
    tol = float(sys.argv[sys.argv.index("--tolerance") + 1]) if "--tolerance" in sys.argv else 1e-5
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    preds = [json.loads(line) for line in open(preds_path)]
    if meta["input"] == "image":
        x = {"image": images([p["path"] for p in preds], int(meta["image_channels"]), int(meta["image_height"]),
                             int(meta["image_width"]))}
    else:
        x = table(input_path, meta)
    n = len(next(iter(x.values())))
    assert n == len(preds), f"{n} inputs, {len(preds)} predictions"
    classes = json.loads(meta.get("class_names", "[]"))
    if classes:
        want = np.array([[p[f"p_{c}"] for c in classes] for p in preds], dtype=np.float64)
        want_class = [classes.index(p["prediction"]) for p in preds]
    else:
        want = np.array([[p["prediction"]] for p in preds], dtype=np.float64)
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    main_out = "probabilities" if classes else "value"

    def run(batch):
        got, got_class = [], []
        for i in range(0, n, batch):
            feed = {k: v[i:i + batch] for k, v in x.items()}
            outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
            got.append(outs[main_out][:, :want.shape[1]])
            if classes:
                got_class.extend(outs["class"].tolist())
        return np.concatenate(got).astype(np.float64), got_class

    report = {"rows": n, "outputs": [o.name for o in sess.get_outputs()]}
    ok = True
    for batch in (1, 1000):
        got, got_class = run(batch)
        diff = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
        report[f"max_diff_batch_{batch}"] = diff
        ok &= diff <= tol
        if classes:
            # A class may differ only where two probabilities tie to within the tolerance.
            top2 = np.sort(want, axis=1)[:, -2:]
            mism = [i for i, (a, b) in enumerate(zip(got_class, want_class)) if a != b and top2[i, 1] - top2[i, 0] > tol]
            report[f"class_mismatches_batch_{batch}"] = len(mism)
            ok &= not mism
    print(json.dumps(report))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
