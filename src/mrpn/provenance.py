"""What a result was computed on. Runs are bit-identical only on the same CPU kind, thread count and
library versions (float reductions in BLAS/oneDNN kernels follow the CPU's vector width), so every
metrics.json records them: two runs that differ can then be told apart from a bug."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform.processor() elsewhere, "" if unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_record() -> dict[str, Any]:
    """CPU model, the vector instructions torch dispatches to, core count and library versions."""
    import numpy  # lazily: this module sits in the lowest layer, imported by light tools too
    import torch

    return {"cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__}
