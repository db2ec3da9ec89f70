"""Every third-party module the code imports is a declared dependency of the package.

An import that works only because something else installed it (a dev tool, a transitive
dependency) breaks the image, which installs the declared dependencies and nothing else.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.deploy.helpers import ROOT

OWN = {"shopstream", "services", "shopstream_tools", "tests"}
# What the images install (`pip install .`); the lab's extra only for the lab's own modules.
RUNTIME_TREES = ("shopstream", "services", "shopstream_tools", "deploy/docker")
LAB = ROOT / "shopstream_tools" / "lab"


def declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {normalise(re.split(r"[=<>~!\[; ]", spec, maxsplit=1)[0]) for spec in specs}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in OWN:
                found.add(top)
    return found


@cache
def distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())


def undeclared(path: Path, allowed: set[str]) -> list[str]:
    label = path.relative_to(ROOT) if ROOT in path.parents else path.name
    missing = []
    for module in sorted(third_party_imports(path)):
        providers = {normalise(d) for d in distributions().get(module, [module])}
        if not providers & allowed:
            missing.append(f"{label}: {module} ({', '.join(sorted(providers))})")
    return missing


def runtime_sources() -> list[Path]:
    return [
        path
        for tree in RUNTIME_TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        if "tests" not in path.relative_to(ROOT).parts
    ]


def test_every_runtime_import_is_a_declared_dependency() -> None:
    runtime, lab = declared(), declared("lab")
    missing = [
        problem
        for path in runtime_sources()
        for problem in undeclared(path, lab if LAB in path.parents else runtime)
    ]
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(missing)


def test_the_check_notices_an_undeclared_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("import yaml\nimport json\nfrom shopstream import kafka\n")
    assert third_party_imports(module) == {"yaml"}
    assert undeclared(module, declared() - {"pyyaml"}) == ["probe.py: yaml (pyyaml)"]
    assert undeclared(module, declared()) == []
