"""Regenerate schemas/*.json from the config dataclasses (runner/config): the one source of truth.

    python3 scripts/gen_schemas.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.config.schema import write_schemas  # noqa: E402

if __name__ == "__main__":
    for path in write_schemas():
        print(path)
