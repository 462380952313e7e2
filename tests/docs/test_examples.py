"""Every example of README.md and docs/**/*.md, one case per block (id: file:line), checked as docs/writing-docs.md
says: shell and python blocks run (or, in parse mode, have every command checked), scenario blocks load."""

from __future__ import annotations

import os

import pytest

from tests.docs.examples import (
    IN_EXAMPLE_VARIABLE,
    REPO_ROOT,
    Block,
    ExampleError,
    check_block,
    checked_blocks,
    missing_link_targets,
)

BLOCKS = checked_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_example(block: Block, request: pytest.FixtureRequest) -> None:
    if os.environ.get(IN_EXAMPLE_VARIABLE):
        pytest.skip("inside an example that runs the tests (make test): the examples are not run again")
    fleet = request.getfixturevalue("local_fleet") if block.mode == "local-fleet" else None
    try:
        check_block(block, fleet)
    except ExampleError as failure:
        message = str(failure)
    else:
        return
    pytest.fail(message, pytrace=False)  # the message says it all: the block, the command, the output


def test_every_relative_link_of_the_readme_points_to_a_file() -> None:
    # (mkdocs --strict checks the links of docs/; the README is outside the site)
    readme = REPO_ROOT / "README.md"
    missing = missing_link_targets(readme.read_text(encoding="utf-8"), readme.parent)
    assert not missing, "README.md links to files that do not exist:\n" + "\n".join(missing)
