"""Types everywhere, checked by mypy --strict (configured in pyproject.toml)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_passes(tmp_path: Path) -> None:
    # node-agent/ is imported as `nodeagent`: give mypy that name through a link. One run covers the code, the
    # tests and the benchmarks (mypy takes packages or files, not both: tests/ and bench/ are named as packages).
    (tmp_path / "nodeagent").symlink_to(ROOT / "node-agent")
    env = {**os.environ, "MYPYPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "-p", "fabric",
                        "-p", "nodeagent", "-p", "tests", "-p", "bench"], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
