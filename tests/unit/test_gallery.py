import json
from pathlib import Path

import pytest

from fabric.core.errors import ArmError
from fabric.gallery import Gallery


def publish(root: Path, version: str) -> None:
    d = root / "fabriclab" / "busybox" / "lab" / version
    d.mkdir(parents=True)
    (d / "image.json").write_text(json.dumps({"disk": "disk.vhd", "diskFormat": "vpc", "kernel": "vmlinuz",
                                              "initrd": "initrd.img", "cmdline": "console=ttyS0",
                                              "bootMarker": "ready"}))


def test_latest_is_the_highest_version_numerically(tmp_path: Path) -> None:
    for v in ["1.0.9", "1.0.10", "1.0.2"]:
        publish(tmp_path, v)
    (tmp_path / "fabriclab" / "busybox" / "lab" / "1.0.99").mkdir()   # incomplete build: no image.json
    img = Gallery(tmp_path).resolve("fabriclab:busybox:lab:latest")
    assert (img.version, img.exact_version) == ("latest", "1.0.10")
    assert img.disk == str(tmp_path / "fabriclab/busybox/lab/1.0.10/disk.vhd")


def test_pinned_version_that_is_gone_breaks_with_the_versions_listed(tmp_path: Path) -> None:
    publish(tmp_path, "1.0.1")
    with pytest.raises(ArmError) as e:
        Gallery(tmp_path).resolve("fabriclab:busybox:lab:1.0.0")
    assert e.value.code == "ImageVersionNotFound" and "1.0.1" in e.value.message


def test_unknown_image(tmp_path: Path) -> None:
    with pytest.raises(ArmError) as e:
        Gallery(tmp_path).resolve("acme:nothing:here:latest")
    assert e.value.code == "ImageNotFound"


@pytest.mark.parametrize("urn", ["busybox", "a:b:c", "a:b:c:1.0", "a:b:c:d:e", "a::c:latest", "a:b:c:v1"])
def test_malformed_image_names_the_rule(tmp_path: Path, urn: str) -> None:
    with pytest.raises(ArmError) as e:
        Gallery(tmp_path).resolve(urn)
    assert e.value.code == "InvalidParameter"
    assert e.value.target.startswith("storageProfile.imageReference")


def test_the_source_hash_tells_a_changed_image_source(tmp_path: Path) -> None:
    from fabric.gallery import source_hash
    (tmp_path / "etc").mkdir()
    agent = tmp_path / "etc" / "agent"
    agent.write_text("v1")
    first = source_hash(tmp_path)
    assert source_hash(tmp_path) == first
    agent.write_text("v2")
    assert source_hash(tmp_path) != first
    agent.write_text("v1")
    agent.chmod(0o755)                 # an executable bit is part of the image too
    assert source_hash(tmp_path) != first
