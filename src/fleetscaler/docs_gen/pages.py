"""The generated pages: their names, how each is built, writing them and finding stale ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fleetscaler.docs_gen import cli_page, scenario_page, server_config_page, template_page

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE_DIR = REPO_ROOT / "docs" / "reference"

# docs/reference/NAME -> the function that writes it (given the repository root, for paths shown relative to it).
PAGES: dict[str, Callable[[Path], str]] = {
    "cli.md": cli_page.render,
    "server-config.md": server_config_page.render,
    "template-parameters.md": template_page.render,
    "scenario-schema.md": scenario_page.render,
}


def render_page(name: str) -> str:
    return PAGES[name](REPO_ROOT)


def write_pages(directory: Path = REFERENCE_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PAGES:
        path = directory / name
        path.write_text(render_page(name), encoding="utf-8")
        written.append(path)
    return written


def stale_pages(directory: Path = REFERENCE_DIR) -> list[str]:
    """The pages whose file is missing or differs from what `write_pages` would write now."""
    stale = []
    for name in PAGES:
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != render_page(name):
            stale.append(name)
    return stale
