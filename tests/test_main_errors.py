"""The installed `reid` entry point turns user mistakes into one line and a non-zero exit."""

import subprocess
import sys


def run(*args):
    code = "from reid.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_missing_config_is_one_line_without_traceback(tmp_path):
    result = run("train", "-c", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.yaml'}: config file not found"
    assert "Traceback" not in result.stderr


def test_bad_override_names_the_key():
    result = run("train", "train.epoch=3")
    assert result.returncode == 2
    assert "unknown config key train.epoch" in result.stderr and "Traceback" not in result.stderr


def test_synth_rejects_a_bad_size(tmp_path):
    result = run("data", "synth", "--out", str(tmp_path / "x"), "--height", "8")
    assert result.returncode == 1 and "--height must be >= 32" in result.stderr
