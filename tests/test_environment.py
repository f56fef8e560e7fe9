"""The set-up: pyproject.toml and environment.yml describe the same environment; CI runs the README."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_deps():
    return sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def _conda_pip_deps():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if re.match(r"\s*- pip:\s*$", l))
    deps = []
    for line in lines[start + 1:]:
        m = re.match(r"\s+- (\S+)\s*$", line)
        if not m:
            break
        deps.append(m.group(1))
    return sorted(deps)


def test_environment_yml_matches_pyproject():
    assert _conda_pip_deps() == _pyproject_deps()


def test_every_dependency_is_pinned():
    for dep in _pyproject_deps():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.]*", dep), dep


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 run.py test" in readme and "python3 run.py course" in readme
    assert re.search(r"^exec python3 run\.py test$", ci, re.M)
