"""The shipped tables with category and text columns, encoded as kiln's README says kiln does
(so PyTorch trains on the same inputs): for text, NFKC then lower case, word tokens (runs of
letters and digits; any other visible character a token), a vocabulary of <pad>, <unk> and the
most frequent training tokens (ties by the token), max_len ids padded with 0; for categories,
one-hot over (other) and the training values by frequency; numbers standardized with the
training rows' mean and (population) standard deviation; rows with a missing number or target
dropped.
"""
import csv
import gzip
import unicodedata
from collections import Counter

import numpy as np
import torch

MISSING = {"", "na", "nan", "null", "?", "n/a", "none"}


def rows(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def tokens(text):
    text = unicodedata.normalize("NFKC", text).lower()
    out, word = [], ""
    for c in text:
        if c.isalnum():
            word += c
            continue
        if word:
            out.append(word)
            word = ""
        if not c.isspace():
            out.append(c)
    if word:
        out.append(word)
    return out


def spam(root, max_len=64, vocab_size=8000):
    train, test = rows(f"{root}/datasets/spam/train.csv.gz"), rows(f"{root}/datasets/spam/test.csv.gz")
    counts = Counter(t for r in train for t in tokens(r["text"]))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: vocab_size - 2]
    index = {t: i + 2 for i, (t, _) in enumerate(ranked)}
    classes = sorted({r["label"] for r in train})

    def encode(part):
        ids = np.zeros((len(part), max_len), dtype=np.float32)
        for i, r in enumerate(part):
            for j, t in enumerate(tokens(r["text"])[:max_len]):
                ids[i, j] = index.get(t, 1)
        y = np.array([classes.index(r["label"]) for r in part])
        return torch.from_numpy(ids), torch.from_numpy(y).long()

    return encode(train), encode(test)


def penguins(root):
    numbers = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    categories = ["species", "island", "year"]
    keep = lambda r: r["sex"].lower() not in MISSING and all(r[c].lower() not in MISSING for c in numbers)
    train = [r for r in rows(f"{root}/datasets/penguins/train.csv") if keep(r)]
    test = [r for r in rows(f"{root}/datasets/penguins/test.csv") if keep(r)]
    x = np.array([[float(r[c]) for c in numbers] for r in train])
    mean, std = x.mean(0), x.std(0)
    values = {}
    for c in categories:
        counts = Counter(r[c] for r in train if r[c].lower() not in MISSING)
        values[c] = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    classes = sorted({r["sex"] for r in train})

    def encode(part):
        out = []
        for r in part:
            row = list((np.array([float(r[c]) for c in numbers]) - mean) / std)
            # Columns in the table's order (kiln: numbers, then category columns as they appear).
            for c in ["species", "island", "year"]:
                slots = [0.0] * (len(values[c]) + 1)
                slots[values[c].index(r[c]) + 1 if r[c] in values[c] else 0] = 1.0
                row += slots
            out.append(row)
        y = np.array([classes.index(r["sex"]) for r in part])
        return torch.tensor(np.array(out), dtype=torch.float32), torch.from_numpy(y).long()

    return encode(train), encode(test)
