"""Run R as a reference implementation from tests: data in as CSV, results out as JSON.

    result = run_r(
        '''
        fit <- cuminc(d$time, d$status, d$arm)
        emit(list(stat = fit$Tests[1, "stat"]))
        ''',
        {"d": frame},
        packages=["cmprsk"],
    )

Each polars frame is written to `<name>.csv` in a temporary directory (nulls as NA) and read into an R
variable of the same name before the script runs (`CGDW_R_DIR` holds the directory). The script hands its
result back with `emit(x)`, which writes `x` as JSON at full double precision (jsonlite, `digits = NA`,
scalars unboxed, NA/NaN as null); `run_r` returns it parsed. Output goes through a file rather than stdout
so that messages R prints while loading packages cannot corrupt it.

R is a test dependency: if Rscript or an R package is missing, `run_r` raises `RNotAvailableError` (the
test fails, it is not skipped) naming the Debian packages to install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

R_DEBIAN_PACKAGES = "r-base-core r-cran-survival r-cran-cmprsk r-cran-jsonlite r-cran-kmsurv"
INSTALL_HINT = (
    f"R is needed as the reference implementation for these tests: install it with\n"
    f"    apt-get install --no-install-recommends {R_DEBIAN_PACKAGES}"
)

_PRELUDE = """\
suppressPackageStartupMessages({{
  for (.pkg in c({packages})) {{
    if (!requireNamespace(.pkg, quietly = TRUE)) {{
      cat("CGDW_R_MISSING_PACKAGE:", .pkg, "\\n", file = stderr())
      quit(status = 3)
    }}
    library(.pkg, character.only = TRUE)
  }}
}})
emit <- function(x) {{
  writeLines(jsonlite::toJSON(x, digits = NA, auto_unbox = TRUE, na = "null", matrix = "rowmajor"),
             Sys.getenv("CGDW_R_OUT"))
  invisible(x)
}}
{reads}
"""


class RNotAvailableError(RuntimeError):
    """Rscript or a required R package is not installed."""


class RScriptError(RuntimeError):
    """The R script failed; the message carries R's stderr."""


def _r_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid R string literal for these names


def run_r(
    script: str,
    frames: Mapping[str, pl.DataFrame] | None = None,
    packages: Sequence[str] = (),
    timeout: float = 300,
) -> Any:
    """Run `script` with Rscript after loading `frames` (R variables of the same names) and `packages`.

    jsonlite is always loaded; `emit(x)` returns `x` to Python. Frames are read with `read.csv`
    (`stringsAsFactors = FALSE`), so strings stay character vectors and numbers are doubles or integers.
    """
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise RNotAvailableError(f"Rscript is not on PATH. {INSTALL_HINT}")
    frames = frames or {}
    for name in frames:
        if not name.isidentifier():
            raise ValueError(f"frame name {name!r} is not a valid R variable name")
    wanted = ["jsonlite", *[p for p in packages if p != "jsonlite"]]
    with tempfile.TemporaryDirectory(prefix="cgdw-r-") as tmp:
        directory = Path(tmp)
        reads = []
        for name, frame in frames.items():
            # polars writes the shortest text that round-trips each double, so R reads the same values.
            frame.write_csv(directory / f"{name}.csv", null_value="NA")
            reads.append(
                f"{name} <- read.csv(file.path(Sys.getenv('CGDW_R_DIR'), {_r_string(name + '.csv')}), "
                "stringsAsFactors = FALSE)"
            )
        prelude = _PRELUDE.format(packages=", ".join(_r_string(p) for p in wanted), reads="\n".join(reads))
        script_path = directory / "script.R"
        script_path.write_text(prelude + "\n" + script + "\n")
        out_path = directory / "out.json"
        env = {**os.environ, "CGDW_R_DIR": str(directory), "CGDW_R_OUT": str(out_path)}
        proc = subprocess.run(
            [rscript, "--vanilla", str(script_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode == 3 and "CGDW_R_MISSING_PACKAGE:" in proc.stderr:
            missing = proc.stderr.split("CGDW_R_MISSING_PACKAGE:", 1)[1].split()[0]
            raise RNotAvailableError(f"R package {missing!r} is not installed. {INSTALL_HINT}")
        if proc.returncode != 0:
            raise RScriptError(f"Rscript exited with status {proc.returncode}:\n{proc.stderr.strip()}")
        if not out_path.exists():
            raise RScriptError(f"the R script never called emit(x); its stderr:\n{proc.stderr.strip()}")
        return json.loads(out_path.read_text())
