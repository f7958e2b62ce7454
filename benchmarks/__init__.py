"""Benchmarks that print figures (not timed tests). Results and commands: benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def synthesize_in_child(out_dir: Path, patients: int, seed: int = 1) -> dict[str, Path]:
    """Write a synthetic cohort in a child process, so the caller's peak RSS is that of the loads alone."""
    code = (
        "import json; from pathlib import Path; from etl.synth import write_synthetic_cohort; "
        f"r = write_synthetic_cohort(Path({str(out_dir)!r}), seed={seed}, patients={patients}); "
        "print(json.dumps({k: str(v) for k, v in r.files.items()}))"
    )
    written = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {key: Path(value) for key, value in json.loads(written.stdout.splitlines()[-1]).items()}
