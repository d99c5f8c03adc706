"""The README's quick-start transcript is what a fresh checkout prints: benchmarks/quickstart.sh runs the commands
with a fresh cache and folder, and its output must equal the README's block up to timings. It needs PyPI (the
offline copy of MovieLens 100K comes from the recbole wheel there): marked ``network``, skipped when unreachable."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _normalise(text: str) -> str:
    text = re.sub(r"\b\d+\.\d+s\b", "Ns", text)  # "in 1.6s", "5.2s": timings vary
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


@pytest.mark.network
@pytest.mark.slow
def test_readme_quick_start_is_what_a_fresh_checkout_prints():
    if not (ROOT / ".venv" / "bin" / "embedrec").exists() or shutil.which("bash") is None:
        pytest.skip("needs the project's .venv (make install)")
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "quickstart.sh")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    assert _normalise(block) == _normalise(out.stdout)


def test_the_commands_reference_has_a_section_for_every_command():
    """docs/commands.md says it holds every command; a first-hour review found no `verify` there (nor `predict` or
    `index`, which sat under recommend's details)."""
    from embedrec.cli import main

    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    missing = [name for name in main.commands if f"\n## {name}\n" not in text]
    assert not missing, missing
