"""The committed stubs are exactly what grpcio-tools generates from proto/ (never hand-edited)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={tmp_path}",
                    f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}",
                    *[str(p.relative_to(ROOT / "proto")) for p in sorted((ROOT / "proto/fabric/v1").glob("*.proto"))]],
                   check=True, cwd=ROOT / "proto")
    names = [p.name for p in (tmp_path / "fabric" / "v1").iterdir()]
    assert len(names) == 3 * len(list((ROOT / "proto/fabric/v1").glob("*.proto")))
    for name in names:
        fresh = (tmp_path / "fabric" / "v1" / name).read_text()
        committed = (ROOT / "fabric" / "v1" / name).read_text()
        assert fresh == committed, f"fabric/v1/{name} differs from proto/: run `make proto`"
