"""The extras of pyproject.toml and the table the "missing package" errors come from agree."""

import re
import sys
from pathlib import Path

import pytest
import tomllib

from fireredasr_hf.extras import EXTRAS, MissingDependencyError, missing_packages, require

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
OWN_EXTRA = re.compile(r"fireredasr-hf\[([\w,]+)\]")


def requirement_names(extra: str) -> set[str]:
    """The packages an extra installs, following `fireredasr-hf[...]` references."""
    names = set()
    for requirement in PYPROJECT["optional-dependencies"][extra]:
        own = OWN_EXTRA.fullmatch(requirement)
        if own:
            for other in own.group(1).split(","):
                names |= requirement_names(other)
        else:
            names.add(re.match(r"[A-Za-z0-9_.-]+(\[[\w,]+\])?", requirement).group(0).lower())
    return names


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_every_extra_of_the_table_installs_its_packages(extra):
    assert {package.lower() for package in EXTRAS[extra].values()} <= requirement_names(extra)


def test_all_holds_every_extra():
    for extra in EXTRAS:
        assert requirement_names(extra) <= requirement_names("all"), extra


def test_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jiwer", None)
    assert missing_packages("data", ["datasets", "jiwer"]) == ["jiwer"]
    with pytest.raises(
        MissingDependencyError, match=r"^eval needs jiwer \(not installed\): pip install 'fireredasr-hf\[data\]'$"
    ):
        require("data", "eval", ["datasets", "jiwer"])
    assert issubclass(MissingDependencyError, ImportError)
