"""dist/code.zip: the package and its pinned runtime dependencies, byte for byte the same on every build."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from fleetscaler.deploy import package


def fake_dependencies(root: Path, mtime: float) -> Path:
    """A stand-in for pip's --target tree (no network in tests): a module, a compiled file, pip leftovers."""
    files = {
        "pydantic_core/__init__.py": b"VERSION = 'test'\n",
        "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so": b"\x7fELF fake",
        "pydantic_core/__pycache__/__init__.cpython-312.pyc": b"stale bytecode",
        "boto3-1.44.5.dist-info/METADATA": b"Name: boto3\n",
    }
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        os.utime(path, (mtime, mtime))
    return root


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    # Given the same sources and dependencies, touched at different times between the two builds
    first_deps = fake_dependencies(tmp_path / "deps1", mtime=1_000_000_000)
    second_deps = fake_dependencies(tmp_path / "deps2", mtime=1_700_000_000)

    # When the package is built twice
    package.build(tmp_path / "one.zip", deps_dir=first_deps)
    package.build(tmp_path / "two.zip", deps_dir=second_deps)

    # Then the two archives are the same bytes
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_package_holds_the_handlers_and_dependencies_but_no_tooling(tmp_path: Path) -> None:
    # Given a build with dependencies
    output = tmp_path / "code.zip"
    package.build(output, deps_dir=fake_dependencies(tmp_path / "deps", mtime=1_600_000_000))

    # When its entries are listed
    with zipfile.ZipFile(output) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]

    # Then the Lambda handlers and the dependencies are at the archive root, sorted, with fixed times
    assert "fleetscaler/handlers/router.py" in names
    assert "fleetscaler/dal/models.py" in names
    assert "pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so" in names
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    # And nothing for operators or tests, and no bytecode
    assert not [n for n in names if re.match(r"fleetscaler/(cli|local|deploy|docs_gen)/", n)]
    assert not [n for n in names if n.startswith("tests/") or n.endswith(".pyc") or "__pycache__" in n]


def test_dependencies_are_the_lambda_platform_wheels() -> None:
    # Given the pip command the build runs
    command = package.pip_command(Path("/tmp/target"))
    # Then it installs only binary wheels for python3.12 on manylinux x86_64, exactly as pinned
    joined = " ".join(command)
    assert "--only-binary=:all:" in command
    assert "--platform manylinux2014_x86_64" in joined
    assert "--python-version 3.12" in joined
    assert f"-r {package.REQUIREMENTS}" in joined


def test_requirements_pin_runtime_dependencies_only() -> None:
    # Given requirements-lambda.txt
    lines = [
        line.strip()
        for line in package.REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pins = dict(line.split("==") for line in lines)
    # Then every line is an exact pin, the runtime needs are there, and no test or operator tool is
    assert len(pins) == len(lines)
    assert {"boto3", "botocore", "pynamodb", "aws-lambda-powertools"} <= set(pins)
    assert not {"pytest", "moto", "click", "hypothesis", "matplotlib", "pyyaml"} & {p.lower() for p in pins}


def test_every_shipped_module_imports_with_only_the_pinned_dependencies() -> None:
    # Given every module code.zip ships (the fleetscaler package without cli, local and deploy), imported in a
    # fresh interpreter, lazy imports included
    code = textwrap.dedent(
        f"""
        import importlib, json, pkgutil, sys
        before = set(sys.modules)
        import fleetscaler

        def walk(path, prefix):
            for info in pkgutil.iter_modules(path, prefix):
                if info.name.split(".")[1] in {package.EXCLUDED_SUBPACKAGES!r}:
                    continue
                module = importlib.import_module(info.name)
                if info.ispkg:
                    walk(module.__path__, info.name + ".")

        walk(fleetscaler.__path__, "fleetscaler.")
        from importlib.metadata import packages_distributions
        owners = packages_distributions()
        print(json.dumps(sorted({{d for m in set(sys.modules) - before for d in owners.get(m.split(".")[0], [])}})))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = {name.lower().replace("_", "-") for name in json.loads(run.stdout)}
    pins = {
        line.split("==")[0].lower()
        for line in package.REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    # Then every distribution they load is pinned in requirements-lambda.txt, or is fleetscaler itself, or is used
    # only when installed (botocore's certifi, pynamodb's blinker): the Lambda package has all it needs
    assert loaded - pins - {"fleetscaler", "certifi", "blinker"} == set()
    # And nothing is pinned that no shipped module loads (pydantic was, before the settings parser replaced it)
    assert "pydantic" not in pins
