"""Lines of product code at a git revision: sdk/, handlers/, training/, counting only lines that
hold code (not blank lines, comments or docstrings). ``python scripts/code_lines.py [REV]``."""

from __future__ import annotations

import io
import subprocess
import sys
import tokenize

SKIP = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
STATEMENT_START = (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, tokenize.DEDENT)


def code_lines(source: str) -> int:
    lines: set[int] = set()
    previous = tokenize.INDENT
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING and previous in STATEMENT_START:
            previous = tok.type  # a string standing as a statement: a docstring
            continue
        if tok.type not in SKIP:
            lines.update(range(tok.start[0], tok.end[0] + 1))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            previous = tok.type
    return len(lines)


def main(rev: str) -> int:
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "sdk", "handlers", "training"],
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    total = 0
    for name in (f for f in listed if f.endswith(".py")):
        shown = subprocess.run(["git", "show", f"{rev}:{name}"], capture_output=True, text=True, check=True)
        total += code_lines(shown.stdout)
    print(f"{rev}: {total} lines of code")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "HEAD"))
