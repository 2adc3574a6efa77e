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
import sys

import numpy as np
import onnx
import onnxruntime as ort


def table(path, names, categories):
    """The model's inputs from a CSV: `features` (numbers, NaN for a missing cell) and one
    string input per category column."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cell = lambda s: float(s) if s.strip() not in ("", "NA", "NaN", "nan", "?") else np.nan
    inputs = {}
    if names:
        inputs["features"] = np.array([[cell(r[n]) for n in names] for r in rows], dtype=np.float32)
    for c in categories:
        inputs[c] = np.array([r[c] for r in rows], dtype=object)
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
        x = table(input_path, json.loads(meta["feature_names"]), json.loads(meta.get("category_inputs", "[]")))
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
