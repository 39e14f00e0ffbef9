"""The committed stubs are exactly what grpcio-tools generates from proto/ (never hand-edited)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={tmp_path}",
                    f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", "fabric/v1/fabric.proto"],
                   check=True, cwd=ROOT)
    for name in ("fabric_pb2.py", "fabric_pb2_grpc.py", "fabric_pb2.pyi"):
        fresh = (tmp_path / "fabric" / "v1" / name).read_text()
        committed = (ROOT / "fabric" / "v1" / name).read_text()
        assert fresh == committed, f"fabric/v1/{name} differs from proto/: run `make proto`"
