"""Where the data that ships with dsrun lies: the sample gallery and the JSON Schemas.

In the repository they are the top-level folders ``samples/`` and ``schemas/``; a wheel carries them
inside the package, as ``runner/_data/samples`` and ``runner/_data/schemas`` (setup.py copies them
there when the wheel is built). :func:`data_dir` answers for both.

>>> data_dir("schemas").joinpath("app.json").is_file()
True
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
#: the folders a wheel carries inside the package (setup.py reads this)
SHIPPED = ("samples", "schemas")


def data_dir(name: str) -> Path:
    """The folder of shipped data ``name`` (one of :data:`SHIPPED`): in the installed package, else
    the source checkout's top-level folder."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped data: {SHIPPED}")
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def in_checkout() -> bool:
    """dsrun runs from its source checkout (its data are the repository's folders, not a wheel's)."""
    return not (_PACKAGE / "_data").is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file()
