#!/usr/bin/env python3
"""The crate's module import graph: for each top-level module of src/ (cli, check, depmod...),
the other top-level modules it uses (`use crate::X`, `crate::X::` paths), and its cycles.

    python3 scripts/import-graph.py [--depth 2]   # depth 2: kernel::source, cli::info...
"""
import os, re, sys, itertools

depth = 1
if "--depth" in sys.argv:
    depth = int(sys.argv[sys.argv.index("--depth") + 1])
SRC = os.path.join(os.path.dirname(__file__), "..", "src")

def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel

def key(parts):
    return "::".join(parts[:depth]) if parts else "lib"

# strip comments and strings crudely, then find crate:: paths (also inside use-groups)
edges = {}
for dirpath, _, files in os.walk(SRC):
    for f in files:
        if not f.endswith(".rs"):
            continue
        p = os.path.join(dirpath, f)
        me = module_of(p)
        if me == [] and f == "main.rs":
            continue
        src = open(p, encoding="utf-8").read()
        src = re.sub(r"//[^\n]*", "", src)
        # `#[cfg(test)] mod tests` blocks are part of the module too; keep them
        targets = set()
        for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?", src):
            parts = [m.group(1)] + ([m.group(2)] if m.group(2) else [])
            targets.add(key(parts))
        # `use crate::{a, b::c}` groups
        for m in re.finditer(r"\bcrate::\{([^}]*)\}", src):
            for item in m.group(1).split(","):
                item = item.strip()
                if item:
                    targets.add(key(item.split("::")))
        # super:: from a submodule names its parent's siblings
        if len(me) >= 2:
            for m in re.finditer(r"\bsuper::([a-z_][a-z0-9_]*)", src):
                targets.add(key(me[:-2] + [m.group(1)]) if len(me) > 2 else key(me[:1] + [m.group(1)]))
        k = key(me)
        targets = {t for t in targets if t != k and not k.startswith(t + "::") and not t.startswith(k + "::")}
        # drop targets that are items, not modules (Error, Module...)
        targets = {t for t in targets if t[0].islower()}
        edges.setdefault(k, set()).update(targets)

mods = sorted(edges)
for k in mods:
    print(f"{k:16} -> {', '.join(sorted(edges[k])) or '-'}")

# cycles: strongly connected components (Tarjan)
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(sorted(c))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index:
        strong(v)
print()
if not sccs:
    print("no cycles")
for c in sccs:
    pairs = [f"{a}<->{b}" for a, b in itertools.combinations(c, 2) if b in edges.get(a, ()) and a in edges.get(b, ())]
    print("cycle:", " ".join(c), ("(mutual: " + ", ".join(pairs) + ")") if pairs else "")
