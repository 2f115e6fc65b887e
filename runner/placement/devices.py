"""The GPUs a placement can put shards on, without initialising CUDA in the parent.

``CUDA_VISIBLE_DEVICES`` when set (its entries, indices or UUIDs, in order: CUDA numbers the visible
devices 0…n-1 in that order), else one entry per GPU the NVIDIA driver lists under
``/proc/driver/nvidia/gpus`` (``"0"``, ``"1"``, …). A shard's process gets one entry as its own
``CUDA_VISIBLE_DEVICES``, so inside it the GPU is device 0 (NVDEC, engines and CUDA graphs all there).

>>> visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}), visible_gpus({"CUDA_VISIBLE_DEVICES": ""})
(['2', '3'], [])
>>> visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"})
[]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")


def visible_gpus(env: Mapping[str, str] | None = None, driver: Path = DRIVER_GPUS) -> list[str]:
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        entries = [e.strip() for e in listed.split(",") if e.strip()]
        # CUDA stops at the first invalid entry; "-1" is the usual way to hide every GPU
        valid = []
        for e in entries:
            if e.startswith("-"):
                break
            valid.append(e)
        return valid
    try:
        count = sum(1 for p in driver.iterdir() if p.is_dir())
    except OSError:
        return []
    return [str(i) for i in range(count)]
