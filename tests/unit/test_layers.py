"""The layering contract (STYLE.md), checked on every import of the source:

    controller -> cli, lab -> arm -> providers (compute, network, storage, gallery, deployments, scheduler,
        groups, operations, enrollment) -> store -> base (model, files, netio, hostinfo, pki, join) -> core

A module imports only from its own layer or below; fabric.core imports nothing of the project and nothing
outside the standard library; only the store talks to etcd, only the hypervisor package to libvirt; the
generated API (fabric.v1) is for arm, cli and the programs; the node agent uses the core, the base, the node
API's stubs (its only way to the control plane: never the store) and, of the providers, only what names
things on a node (network naming, a storage limit); there is no import cycle and no
project import inside a function (the way cycles used to be hidden); bench/ never imports tests/.
"""
import ast
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RANKS = {"fabric.core": 0,
         "fabric.model": 1, "fabric.files": 1, "fabric.netio": 1, "fabric.hostinfo": 1, "fabric.pki": 1, "fabric.join": 1,
         "fabric.store": 2,
         "fabric.groups": 3, "fabric.operations": 3, "fabric.enrollment": 3, "fabric.scheduler": 3, "fabric.gallery": 3,
         "fabric.network": 3, "fabric.storage": 3, "fabric.compute": 3, "fabric.deployments": 3,
         "fabric.arm": 4, "fabric.v1": 4,
         "fabric.cli": 5, "fabric.lab": 5,      # `fabric lab ...` is one of the CLI's command groups
         "fabric.controller": 6}
# what the node agent may use of the control plane's packages beyond core and base: the node API's stubs, and
# what names things on a node (network naming, a storage limit); never the store: only the control plane
# talks to etcd
NODE_AGENT_MAY_USE = {"fabric.v1.node_pb2", "fabric.v1.node_pb2_grpc", "fabric.network.naming",
                      "fabric.storage.model"}
# the one-machine lab builds its simulated hosts' underlay with the node agent's `ip` helpers
LAB_MAY_USE = {"nodeagent.netsvc.iproute"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ["nodeagent", *rel.parts[1:]] if rel.parts[0] == "node-agent" else list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def sources() -> dict[str, Path]:
    return {module_name(p): p for d in ("fabric", "node-agent") for p in (ROOT / d).rglob("*.py")
            if "/v1/" not in str(p)}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules imported: `from a import b` is a.b when that is a module of the project, else a."""
    known = sources()
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "fabric.v1":     # generated: not in sources()
            out |= {f"fabric.v1.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known.keys()
            out |= subs if subs else {node.module}
            if len(subs) < len(node.names) and subs:
                out.add(node.module)          # names of the package itself beside its modules
    return out


def project(names: set[str], known: dict[str, Path]) -> set[str]:
    return {n for n in names if n in known}


def layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_only_the_store_talks_to_etcd() -> None:
    bad = [m for m, p in sources().items() if any(i.split(".")[0] == "pyetcd" for i in imports(p))
           and not m.startswith("fabric.store")]
    assert bad == []


def test_only_the_hypervisor_package_imports_libvirt() -> None:
    bad = [m for m, p in sources().items() if "libvirt" in {i.split(".")[0] for i in imports(p)}
           and not m.startswith("nodeagent.hypervisor")]
    assert bad == []


def test_the_core_imports_nothing_of_the_project_and_nothing_outside_the_standard_library() -> None:
    bad = {m: sorted(i for i in imports(p) if i.split(".")[0] not in sys.stdlib_module_names
                     and not i.startswith("fabric.core") and i != "__future__")
           for m, p in sources().items() if m.startswith("fabric.core")}
    assert {m: v for m, v in bad.items() if v} == {}


def test_no_layer_imports_one_above_it() -> None:
    known = sources()
    bad = []
    for m, p in known.items():
        if not m.startswith("fabric.") or layer(m) not in RANKS:
            continue
        for i in project(imports(p), known) | {i for i in imports(p) if i.startswith("fabric.v1")}:
            if i.startswith("fabric.") and RANKS.get(layer(i), 0) > RANKS[layer(m)]:
                bad.append(f"{m} -> {i}")
            if i.startswith("nodeagent") and not (m.startswith("fabric.lab") and i in LAB_MAY_USE):
                bad.append(f"{m} -> {i}")
    assert bad == []


def test_the_node_agent_reaches_the_control_plane_only_through_the_node_api() -> None:
    known = sources()
    allowed_layers = {layer(m) for m, r in RANKS.items() if r <= 1}
    bad = [f"{m} -> {i}" for m, p in known.items() if m.startswith("nodeagent")
           for i in imports(p) if i.startswith("fabric.")
           and layer(i) not in allowed_layers and i not in NODE_AGENT_MAY_USE]
    assert bad == []


def test_no_import_cycle() -> None:
    known = sources()
    graph = {m: project(imports(p, top_level_only=True), known) - {m} for m, p in known.items()}

    def reaches(start: str, goal: str) -> list[str]:
        seen, stack = set(), [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return path + [nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return []
    # a package importing its own modules (its __init__ re-exporting them) is not a cycle
    cycles = [reaches(m, m) for m in graph]
    assert [c for c in cycles if c and not all(x.startswith(c[0] + ".") or x == c[0] for x in c[1:-1])] == []


def test_no_project_import_inside_a_function() -> None:
    bad = []
    for m, p in sources().items():
        for fn in ast.walk(ast.parse(p.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if not isinstance(node, (ast.Import, ast.ImportFrom)):
                        continue
                    mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    if mod and mod.split(".")[0] in ("fabric", "nodeagent"):
                        bad.append(f"{m}:{node.lineno} {mod}")
    assert bad == []


def test_benchmarks_never_import_the_tests() -> None:
    bad = [str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.py")
           if any(i.split(".")[0] == "tests" for i in imports(p))]
    assert bad == []
