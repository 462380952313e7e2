"""Build `dist/code.zip`, the Lambda code package, byte for byte the same on every build.

Contents: the `fleetscaler` package without its operator and developer tooling (`cli`, `local`, `deploy`,
`docs_gen`), plus the pinned runtime dependencies of `requirements-lambda.txt` installed for the Lambda platform
(python3.12 on x86_64: the manylinux x86_64 wheels whatever machine builds, so that a compiled dependency would
still be right).

Reproducible: entries are sorted, every timestamp is 1980-01-01, permissions are fixed, no `.pyc` files.

    python -m fleetscaler.deploy.package --output dist/code.zip [--no-deps]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_DIR.parents[1]
REQUIREMENTS = REPO_ROOT / "requirements-lambda.txt"

LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
LAMBDA_ARCHITECTURE = "x86_64"  # must match `Architectures` in cfn/fleet-autoscaler.yaml

# Operator and developer tooling (the CLI, the local fleet, deployment, the docs generator): needs click, PyYAML,
# moto; never imported by a handler.
EXCLUDED_SUBPACKAGES = ("cli", "local", "deploy", "docs_gen")
EXCLUDED_NAMES = ("__pycache__",)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")

FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16


class PackageError(RuntimeError):
    """The package could not be built; the message says which step failed."""


def pip_command(target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    """Install exactly the pinned wheels for the Lambda platform, never an sdist built for this machine."""
    return [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--no-compile", "--no-deps",  # the file pins every transitive dependency itself
        "--only-binary=:all:",
        "--platform", LAMBDA_PLATFORM,
        "--python-version", LAMBDA_PYTHON,
        "--implementation", "cp",
        "--target", str(target),
        "-r", str(requirements),
    ]  # fmt: skip


def install_dependencies(target: Path, requirements: Path = REQUIREMENTS) -> None:
    result = subprocess.run(pip_command(target, requirements), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PackageError(f"pip could not install {requirements.name} for {LAMBDA_PLATFORM}: {last}")
    # pip drops its own bookkeeping here; it differs between runs and machines and Lambda never reads it.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _included(path: Path, root: Path) -> bool:
    relative = path.relative_to(root)
    if any(part in EXCLUDED_NAMES for part in relative.parts):
        return False
    return path.suffix not in EXCLUDED_SUFFIXES


def _package_files(package_dir: Path) -> Iterator[tuple[str, Path]]:
    excluded = {package_dir / name for name in EXCLUDED_SUBPACKAGES}
    for path in package_dir.rglob("*"):
        if path.is_dir() or any(path.is_relative_to(folder) for folder in excluded):
            continue
        if _included(path, package_dir):
            yield f"fleetscaler/{path.relative_to(package_dir).as_posix()}", path


def _dependency_files(deps_dir: Path) -> Iterator[tuple[str, Path]]:
    for path in deps_dir.rglob("*"):
        if path.is_file() and _included(path, deps_dir):
            yield path.relative_to(deps_dir).as_posix(), path


def write_zip(entries: dict[str, Path], output: Path) -> None:
    """Write `entries` (archive name -> file) sorted, with fixed times and modes: same input, same bytes."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(output.suffix + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the building machine
            archive.writestr(info, entries[name].read_bytes(), compresslevel=9)
    partial.replace(output)


def build(output: Path, *, with_dependencies: bool = True, deps_dir: Path | None = None) -> dict[str, Path]:
    """Build the zip at `output`; returns its entries. `deps_dir` reuses an existing dependency install."""
    entries = dict(_package_files(PACKAGE_DIR))
    with tempfile.TemporaryDirectory(prefix="fleetscaler-package-") as scratch:
        if with_dependencies and deps_dir is None:
            deps_dir = Path(scratch) / "deps"
            install_dependencies(deps_dir)
        if with_dependencies and deps_dir is not None:
            for name, path in _dependency_files(deps_dir):
                if name.startswith("fleetscaler/"):
                    raise PackageError(f"a dependency installs {name}, which would shadow the package")
                entries[name] = path
        write_zip(entries, output)
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetscaler.deploy.package", description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "dist" / "code.zip")
    parser.add_argument("--no-deps", action="store_true", help="package fleetscaler only (no pip, no network)")
    args = parser.parse_args(argv)
    try:
        entries = build(args.output, with_dependencies=not args.no_deps)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = args.output.stat().st_size
    print(f"{args.output}: {len(entries)} files, {size / 1e6:.1f} MB, python{LAMBDA_PYTHON} {LAMBDA_ARCHITECTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
