"""`fabric lab up --image`: an image the lab neither holds nor can build is refused before anything is made."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fabric.gallery import publish_blank


def lab_up(lab: Path, image: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fabric.cli.main", "lab", "up", "--image", image],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "FABRIC_LAB_DIR": str(lab)})


def test_an_image_the_lab_cannot_build_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    r = lab_up(lab, "Canonical:UbuntuServer:22.04-LTS:latest")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "LabStartFailed" and "--image" in err["message"]
    assert "fabriclab:busybox:lab" in err["message"], "it does not say what the lab can build"
    assert not lab.exists(), "the refused start made the lab's folder"
    bad = lab_up(lab, "not-a-urn")
    assert bad.returncode == 1 and "--image" in json.loads(bad.stderr)["error"]["message"] and not lab.exists()


def test_the_refusal_names_what_the_gallery_holds(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    publish_blank(lab / "gallery")                       # the lab's gallery holds fabriclab:busybox:lab:1.0.0
    r = lab_up(lab, "fabriclab:busybox:lab2:1.0.0")
    assert r.returncode == 1 and "fabriclab:busybox:lab:1.0.0" in json.loads(r.stderr)["error"]["message"]
    assert sorted(p.name for p in lab.iterdir()) == ["gallery"]
