"""The distribution as a user gets it: a wheel built from the source tree, installed into a fresh venv, works
without the source tree (no editable install behind it): every module imports, the three programs start."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("fabric", "fabric-controller", "fabric-node-agent")


def tracked_files(dest: Path) -> None:
    """A copy of the files git tracks (and those not yet added), without build leftovers or the venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def test_the_wheel_carries_every_module_and_its_programs_run(tmp_path: Path) -> None:
    src, wheels, venv = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv"
    tracked_files(src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, capture_output=True)
    [wheel] = wheels.glob("fabriclab-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    # the dependencies (grpcio, libvirt-python, ...) from this venv's site-packages, by path only: its .pth
    # files, the editable install's among them, are not read, so fabric can only come from the wheel
    fresh_site = next((venv / "lib").glob("python3*/site-packages"))
    (fresh_site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    code = ("import importlib, pkgutil, fabric, nodeagent\n"
            "mods = [m.name for p in (fabric, nodeagent) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
            "[importlib.import_module(m) for m in mods]\n"
            "assert all('site-packages' in str(importlib.import_module(m).__file__) for m in mods[:3]), mods\n"
            "from nodeagent.netsvc.wireserver import handler_package\n"
            "assert handler_package('Microsoft.Azure.Extensions.CustomScript', '2.1'), 'no handler package'\n"
            "print(len(mods), fabric.__file__)\n")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    count, where = r.stdout.split()
    assert str(venv) in where and int(count) > 60
    for name in ("fabric.network.provider", "fabric.storage.dataplane", "fabric.deployments.engine",
                 "nodeagent.netsvc.metadata"):
        assert (fresh_site / (name.replace(".", "/") + ".py")).exists(), name
    for program in PROGRAMS:
        r = subprocess.run([str(venv / "bin" / program), "--help"], cwd=tmp_path, env=env, capture_output=True,
                           text=True)
        assert r.returncode == 0 and "usage:" in r.stdout, (program, r.stderr)
