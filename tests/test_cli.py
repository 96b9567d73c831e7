"""The CLI contract that outside checks rely on (issue #2), driven in-process and once as a
real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main

from .conftest import PASSPHRASE, ROOT, SAMPLE


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def alice(home, capsys):
    code, out, _ = run(capsys, "identity", "create", "--name", "Alice")
    assert code == 0 and "Alice" in out
    return home


def test_identity_list(alice, capsys):
    code, out, _ = run(capsys, "identity", "list")
    assert code == 0 and "Alice" in out and "-" in out.split()[1]


def test_protect_and_verify_json_contract(alice, capsys, tmp_path):
    out_dir = tmp_path / "tagged"
    code, out, _ = run(capsys, "protect", str(SAMPLE), "--out", str(out_dir), "--json",
                       "--device", "cpu")
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["outputs"]
    [entry] = doc["outputs"]
    assert entry["input"] == str(SAMPLE)
    assert Path(entry["output"]).parent == out_dir
    assert entry["faces"] and all(len(f["box"]) == 4 and isinstance(f["serial"], int)
                                  for f in entry["faces"])
    code, out, _ = run(capsys, "verify", entry["output"], str(SAMPLE), "--json")
    assert code == 0
    doc = json.loads(out)
    tagged, original = doc["results"]
    assert tagged["file"] == entry["output"]
    face = tagged["faces"][0]
    assert set(face) == {"box", "verdict", "serial", "owner_key_id", "owner_name", "confidence",
                         "face_change"}
    change = face["face_change"]
    assert set(change) == {"kind", "label", "reason", "text", "score", "reference", "measures"}
    assert (change["kind"], change["reason"], change["reference"]) == ("none", "matches",
                                                                       "original")
    assert face["verdict"] == "verified" and face["owner_name"] == "Alice"
    assert face["serial"] == entry["faces"][0]["serial"]
    assert 0.0 <= face["confidence"] <= 1.0
    assert [f["verdict"] for f in original["faces"]] == ["no_tag"] * len(original["faces"])
    assert all(f["serial"] is None and f["owner_key_id"] is None for f in original["faces"])
    assert all(f["face_change"]["kind"] == "unknown" for f in original["faces"])


def test_card_export_import_between_homes(alice, capsys, tmp_path, monkeypatch):
    card = tmp_path / "alice.card.json"
    assert run(capsys, "card", "export", str(card))[0] == 0
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "bob"))
    code, out, _ = run(capsys, "card", "import", str(card))
    assert code == 0 and "Alice" in out
    tampered = tmp_path / "tampered.json"
    doc = json.loads(card.read_text())
    doc["name"] = "Mallory"
    tampered.write_text(json.dumps(doc))
    code, out, err = run(capsys, "card", "import", str(tampered))
    assert code == 1 and err.startswith("faketagger: error:") and err.count("\n") == 1


def test_wrong_passphrase_is_one_line(alice, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKETAGGER_PASSPHRASE", "not the passphrase")
    code, out, err = run(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / "o"))
    assert code == 1 and out == ""
    assert err.startswith("faketagger: error:") and "passphrase" in err.lower()
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_no_identity(home, capsys, tmp_path):
    code, _, err = run(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / "o"))
    assert code == 1 and "identity" in err


def test_unreadable_file(alice, capsys, tmp_path):
    bad = tmp_path / "nope.jpg"
    code, _, err = run(capsys, "verify", str(bad), "--json")
    assert code == 1 and "nope.jpg" in err and "Traceback" not in err
    code, _, err = run(capsys, "protect", str(tmp_path / "missing-folder"))
    assert code == 1 and "missing-folder" in err


def test_console_script_runs(home, tmp_path):
    """The installed entry point itself (fresh interpreter), with the passphrase from the env."""
    exe = Path(sys.executable).parent / "faketagger"
    env = {**os.environ, "FAKETAGGER_PASSPHRASE": PASSPHRASE}
    proc = subprocess.run([str(exe), "identity", "create", "--name", "Script"], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(exe), "verify", str(tmp_path / "missing.png")], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_protect_folder_never_retags_its_own_outputs(alice, capsys, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(SAMPLE.read_bytes())
    out = folder / "tagged"
    for _ in range(2):
        code, stdout, _ = run(capsys, "protect", str(folder), "--out", str(out), "--json")
        assert code == 0
        [entry] = json.loads(stdout)["outputs"]
        assert entry["input"] == str(folder / "a.jpg")
    assert sorted(p.name for p in out.iterdir()) == ["a-tagged-2.jpg", "a-tagged.jpg"]


def test_backup_restore_and_passphrase_change(alice, capsys, tmp_path, monkeypatch):
    backup = tmp_path / "alice.key.json"
    assert run(capsys, "identity", "backup", str(backup))[0] == 0
    code, _, err = run(capsys, "identity", "backup", str(backup))
    assert code == 1 and "already exists" in err  # never overwrites a backup
    monkeypatch.setenv("FAKETAGGER_NEW_PASSPHRASE", "a brand new passphrase")
    assert run(capsys, "identity", "passphrase")[0] == 0
    code, _, err = run(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / "o"))
    assert code == 1 and "passphrase" in err.lower()  # the old one no longer unlocks
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "new-machine"))
    code, out, _ = run(capsys, "identity", "restore", str(backup))  # backup keeps the old one
    assert code == 0 and "Alice" in out
    code, out, _ = run(capsys, "identity", "list")
    assert "Alice" in out and "fingerprint" in out


def test_contacts_and_history(alice, capsys, tmp_path, monkeypatch):
    assert run(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / "o"))[0] == 0
    code, out, _ = run(capsys, "history")
    assert code == 0 and str(SAMPLE) in out and "serials 1" in out
    assert "No match" in run(capsys, "history", "no-such-thing")[1]
    card = tmp_path / "alice.json"
    run(capsys, "card", "export", str(card))
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "bob"))
    run(capsys, "card", "import", str(card))
    code, out, _ = run(capsys, "contacts", "list")
    assert code == 0 and "Alice" in out and "1 records" in out
    key_id = out.split()[0]
    assert run(capsys, "contacts", "remove", key_id)[0] == 0
    assert "No contacts" in run(capsys, "contacts", "list")[1]
    code, _, err = run(capsys, "contacts", "remove", key_id)
    assert code == 1 and "no contact" in err


def test_entry_point_with_arguments_is_the_cli_and_never_loads_qt(home):
    """`faketagger ARGS` (app.launch.main) runs the command line without importing Qt, so no
    window can open; fresh interpreter, because other tests may have imported Qt already."""
    code = ("import sys\nfrom app.launch import main\nrc = main(['identity', 'list'])\n"
            "print('qt loaded:', any(m.startswith('PySide6') for m in sys.modules))\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "No identity yet" in proc.stdout and "qt loaded: False" in proc.stdout


def test_engine_cli_alone_prints_help(capsys):
    assert main([]) == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the description
    assert "usage: faketagger" in out and "without arguments to open the desktop app" in out
