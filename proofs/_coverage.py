"""Which formulas of `lpcheck.formulas` each obligation uses, by static analysis of the proof
modules.

For every `@obligation`/`@control` function, the closure of the top-level names it refers to
(functions, classes, module-level values, in its own module and in the sibling modules it imports as
`from . import m as M`), collecting each `F.<name>` where F is `lpcheck.formulas`. Used by the
coverage test (every public formula is used by an obligation) and by the finding on where eq. 19
enters the theorems."""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _module_info(path):
    tree = ast.parse(path.read_text())
    formulas, siblings, defs, obligations = set(), {}, {}, {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if node.module == "lpcheck" and a.name == "formulas":
                    formulas.add(a.asname or a.name)
                elif node.level == 1 and node.module is None:
                    siblings[a.asname or a.name] = a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "lpcheck.formulas" and a.asname:
                    formulas.add(a.asname)
    for node in tree.body:
        names = []
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
            for d in getattr(node, "decorator_list", []):
                if (
                    isinstance(d, ast.Call)
                    and getattr(d.func, "id", None) in ("obligation", "control")
                    and d.args
                ):
                    obligations[node.name] = d.args[0].value
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        for name in names:
            defs[name] = node
    return formulas, siblings, defs, obligations


def _refs(node, formulas, siblings, local_names):
    used_formulas, local, remote = set(), set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
            if n.value.id in formulas:
                used_formulas.add(n.attr)
            elif n.value.id in siblings:
                remote.add((siblings[n.value.id], n.attr))
        elif isinstance(n, ast.Name) and n.id in local_names:
            local.add(n.id)
    return used_formulas, local, remote


def formulas_by_obligation(directory=HERE):
    """{obligation id: set of formula names it uses, directly or through helpers}."""
    info = {p.stem: _module_info(p) for p in sorted(Path(directory).glob("*.py"))}
    cache = {}

    def node_refs(mod, name):
        if (mod, name) not in cache:
            formulas, siblings, defs, _ = info[mod]
            cache[(mod, name)] = (
                _refs(defs[name], formulas, siblings, set(defs))
                if name in defs
                else (set(), set(), set())
            )
        return cache[(mod, name)]

    out = {}
    for mod, (_, _, _, obligations) in info.items():
        for fn, oid in obligations.items():
            seen, todo, used = set(), [(mod, fn)], set()
            while todo:
                key = todo.pop()
                if key in seen or key[0] not in info:
                    continue
                seen.add(key)
                f, local, remote = node_refs(*key)
                used |= f
                todo += [(key[0], n) for n in local] + list(remote)
            out[oid] = used
    return out
