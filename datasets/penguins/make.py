"""Split palmerpenguins' penguins.csv (PyPI package `palmerpenguins` 0.1.6, file
`palmerpenguins/data/penguins.csv`) into train.csv and test.csv: rows shuffled with a fixed
seed, 80 / 20, bytes of each row unchanged. `python3 make.py path/to/penguins.csv .`
"""

import random
import sys
from pathlib import Path


def main(source, dest):
    header, *rows = Path(source).read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(rows)
    cut = len(rows) * 4 // 5
    for name, part in (("train.csv", rows[:cut]), ("test.csv", rows[cut:])):
        Path(dest, name).write_text("\n".join([header, *part]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
