#!/usr/bin/env python3
"""Functions of src/ longer than N lines (default 100), longest first, test modules excluded.

    python3 scripts/long-functions.py [N]
"""
import os, re, sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 100
SRC = os.path.join(os.path.dirname(__file__), "..", "src")
FN = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_]\w*)")

def code_only(line):
    """The line without comments, string and char literals (enough to count braces)."""
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if line.startswith("//", i):
            break
        if c == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
            continue
        if c == "'" and re.match(r"'(\\.|[^\\'])'", line[i:i + 4]):
            i += len(re.match(r"'(\\.|[^\\'])'", line[i:i + 4]).group(0))
            continue
        out.append(c)
        i += 1
    return "".join(out)

found = []
for dirpath, _, files in os.walk(SRC):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dirpath, f)
        lines = open(path, encoding="utf-8").read().split("\n")
        # a raw string spanning lines would confuse the counter: blank them out
        test_from = next((i for i, l in enumerate(lines) if l.startswith("#[cfg(test)]")), len(lines))
        i = 0
        while i < test_from:
            m = FN.match(lines[i])
            if not m:
                i += 1
                continue
            depth, started, j = 0, False, i
            while j < len(lines):
                code = code_only(lines[j])
                if not started and ";" in code and "{" not in code:
                    break  # a declaration without body
                for ch in code:
                    if ch == "{":
                        depth += 1
                        started = True
                    elif ch == "}":
                        depth -= 1
                if started and depth <= 0:
                    break
                j += 1
            if started:
                length = j - i + 1
                found.append((length, os.path.relpath(path, SRC), i + 1, m.group(1)))
            i += 1
for length, path, line, name in sorted(found, reverse=True):
    if length > limit:
        print(f"{length:5}  src/{path}:{line}  {name}")
