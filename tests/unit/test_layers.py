"""The layering contract (STYLE.md): who may import etcd, libvirt and the generated API."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def sources() -> list[Path]:
    return [p for d in ("fabric", "node-agent") for p in (ROOT / d).rglob("*.py") if "/v1/" not in str(p)]


def test_only_the_store_talks_to_etcd() -> None:
    bad = [str(p.relative_to(ROOT)) for p in sources()
           if any(m.split(".")[0] == "pyetcd" for m in imports(p)) and "fabric/store" not in str(p)]
    assert bad == []


def test_only_the_hypervisor_package_imports_libvirt() -> None:
    bad = [str(p.relative_to(ROOT)) for p in sources()
           if "libvirt" in {m.split(".")[0] for m in imports(p)} and "node-agent/hypervisor" not in str(p)]
    assert bad == []


def test_the_controller_side_never_imports_the_node_agent_except_the_lab() -> None:
    bad = [str(p.relative_to(ROOT)) for p in (ROOT / "fabric").rglob("*.py")
           if any(m.startswith("nodeagent") for m in imports(p)) and "fabric/lab" not in str(p)]
    assert bad == []
