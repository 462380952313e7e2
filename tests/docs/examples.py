"""The documentation's example runner: every fenced code block of README.md and docs/**/*.md is found, classified by
its info string and the mode comment on the line before it, and checked (see docs/writing-docs.md).

- `sh`, `bash`, `shell` and `python` blocks are examples. Their mode is the HTML comment on the line right before
  the fence: none or `<!-- example: run -->` runs the block; `<!-- example: local-fleet -->` runs it while a local
  fleet is up; `<!-- example: parse -->` runs nothing but checks every command line.
- A `yaml` block whose first line is `# scenario` must load through the scenario loader.
- Every other block (`console`, `text`, `json`, `mermaid`, ...) is prose and is not checked.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import click
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = ("sh", "bash", "shell")
MODES = ("run", "local-fleet", "parse")
RUN_TIMEOUT_SECONDS = 120
# Set in an example's environment: the tests it may run (`make test`) skip the examples instead of recursing.
IN_EXAMPLE_VARIABLE = "FLEETSCALER_IN_EXAMPLE"
# The local fleet the documentation talks about (`fleetscaler local up --port 4566 --gateway-port 8080`).
DOCUMENTED_AWS_PORT = 4566
DOCUMENTED_GATEWAY_PORT = 8080
# Programs a parse-mode block may use without further checks (they are shell built-ins or harmless).
ACCEPTED_PROGRAMS = frozenset({"aws", "export", "cd", "sleep", "cat", "ls", "echo"})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_MODE = re.compile(r"^\s*<!--\s*example:\s*(?P<mode>[\w-]+)\s*-->\s*$")
_SCENARIO = re.compile(r"^#\s*scenario\b")


class ExampleError(AssertionError):
    """An example that fails: the message names the block, what was run and why it failed."""


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is (`path`, 1-based `line` of its opening fence), its language, its mode."""

    path: str
    line: int
    language: str
    text: str
    mode: str | None = None  # the mode comment's value, None without one

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def kind(self) -> str:
        """"shell", "python", "scenario" (checked) or "prose" (not checked)."""
        if self.language in SHELL_LANGUAGES:
            return "shell"
        if self.language == "python":
            return "python"
        if self.language == "yaml":
            first = next((line.strip() for line in self.text.splitlines() if line.strip()), "")
            if _SCENARIO.match(first):
                return "scenario"
        return "prose"

    @property
    def checked(self) -> bool:
        return self.kind != "prose"

    @property
    def run_mode(self) -> str:
        """The mode a shell or python block runs in ("run" without a comment)."""
        return self.mode or "run"

    def describe(self) -> str:
        fence = f"```{self.language}"
        mode = f"<!-- example: {self.mode} -->\n" if self.mode else ""
        return f"{self.id} ({self.kind}, mode {self.run_mode}):\n{mode}{fence}\n{self.text.rstrip()}\n```"


def parse_blocks(markdown: str, path: str = "<text>") -> list[Block]:
    """Every fenced block of `markdown`, in order. A fence closes on a line of the same character at least as long;
    an unclosed fence runs to the end of the text (as in CommonMark)."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        info = opening["info"].strip()
        language = info.split()[0].lower() if info else ""
        language = language.strip("{}.")
        mode_match = _MODE.match(lines[i - 1]) if i > 0 else None
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence) and \
                    len(lines[j]) - len(lines[j].lstrip()) <= 3:
                break
            body.append(_unindent(lines[j], indent))
            j += 1
        text = "\n".join(body) + ("\n" if body else "")
        blocks.append(Block(path, i + 1, language, text, mode_match["mode"] if mode_match else None))
        i = j + 1
    return blocks


def _unindent(line: str, indent: int) -> str:
    cut = min(indent, len(line) - len(line.lstrip(" ")))
    return line[cut:]


def documentation_files(root: Path = REPO_ROOT) -> list[Path]:
    """README.md and every page under docs/, in a stable order."""
    files = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def checked_blocks(root: Path = REPO_ROOT) -> list[Block]:
    blocks: list[Block] = []
    for file in documentation_files(root):
        relative = file.relative_to(root).as_posix()
        blocks += [b for b in parse_blocks(file.read_text(encoding="utf-8"), relative) if b.checked]
    return blocks


# --- checking one block ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalFleetUrls:
    """Where the session's local fleet listens (the documented ports, unless they were taken)."""

    aws_port: int
    gateway_port: int


def check_block(block: Block, local_fleet: LocalFleetUrls | None = None, root: Path = REPO_ROOT) -> None:
    """Check one block by its kind and mode; raises ExampleError (naming the block) when it fails."""
    if block.mode is not None and block.mode not in MODES:
        raise ExampleError(f"{block.id}: unknown example mode {block.mode!r} (one of {', '.join(MODES)})")
    if block.kind == "scenario":
        check_scenario(block, root)
    elif block.kind in ("shell", "python"):
        if block.run_mode == "parse":
            if block.kind == "python":
                check_python_syntax(block)
            else:
                check_parse(block, root)
        elif block.run_mode == "local-fleet":
            if local_fleet is None:
                raise ExampleError(f"{block.id}: needs the local fleet")
            run_block(block, root, local_fleet)
        else:
            run_block(block, root)


def check_scenario(block: Block, root: Path = REPO_ROOT) -> None:
    from fleetscaler.local.scenario import ScenarioError, parse_scenario

    try:
        raw = yaml.safe_load(block.text)
        # Paths in the example (traces) are read as if the file were in data/scenarios/, like the real ones.
        parse_scenario(raw, block.id, base_dir=root / "data" / "scenarios")
    except (yaml.YAMLError, ScenarioError) as exc:
        raise ExampleError(f"scenario example does not load: {exc}\n\n{block.describe()}") from exc


def check_python_syntax(block: Block) -> None:
    try:
        compile(block.text, block.id, "exec")
    except SyntaxError as exc:
        raise ExampleError(f"python example does not compile: {exc}\n\n{block.describe()}") from exc


# Shell: run.


def example_environment(local_fleet: LocalFleetUrls | None = None) -> dict[str, str]:
    """The environment an example runs in: the virtualenv first on PATH, dummy AWS credentials, no way out to AWS
    (every HTTP(S) call but 127.0.0.1's goes to a closed port) and, for local-fleet examples, the fleet's key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
    )
    env[IN_EXAMPLE_VARIABLE] = "1"
    if local_fleet is not None:
        env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local-secret")
    return env


def local_fleet_text(text: str, fleet: LocalFleetUrls) -> str:
    """The block as it runs: the documented ports replaced by the ones the session's fleet has, if they differ."""
    for documented, actual in ((DOCUMENTED_AWS_PORT, fleet.aws_port), (DOCUMENTED_GATEWAY_PORT, fleet.gateway_port)):
        if documented != actual:
            text = re.sub(rf"\b(127\.0\.0\.1|localhost):{documented}\b", rf"\g<1>:{actual}", text)
    return text


def run_block(block: Block, root: Path = REPO_ROOT, local_fleet: LocalFleetUrls | None = None) -> None:
    text = block.text if local_fleet is None else local_fleet_text(block.text, local_fleet)
    suffix = ".py" if block.kind == "python" else ".sh"
    with tempfile.NamedTemporaryFile("w", suffix=suffix, prefix="example-", delete=False) as script:
        script.write(text)
    command = [sys.executable, script.name] if block.kind == "python" else ["bash", "-eo", "pipefail", script.name]
    shown = "python" if block.kind == "python" else "bash -eo pipefail"
    if text != block.text and local_fleet is not None:
        shown += (
            f"; the fleet's ports replacing the documented ones: {DOCUMENTED_AWS_PORT} -> {local_fleet.aws_port}, "
            f"{DOCUMENTED_GATEWAY_PORT} -> {local_fleet.gateway_port}"
        )
    # Its own process group, so that a timeout or a process it left in the background is stopped with it.
    process = subprocess.Popen(
        command, cwd=root, env=example_environment(local_fleet), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        stdout, stderr = process.communicate()
        raise ExampleError(
            f"example still running after {RUN_TIMEOUT_SECONDS} s ({shown}, in {root}); a long or endless command "
            f"belongs in a parse-mode block\n\n{block.describe()}\n\n{_tails(stdout, stderr)}"
        ) from None
    finally:
        _stop_group(process)
        os.unlink(script.name)
    if process.returncode != 0:
        raise ExampleError(
            f"example exited {process.returncode} ({shown}, in {root})\n\n{block.describe()}\n\n"
            f"{_tails(stdout, stderr)}"
        )


def _stop_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _tails(stdout: str | bytes | None, stderr: str | bytes | None, lines: int = 25) -> str:
    parts = []
    for name, raw in (("stdout", stdout), ("stderr", stderr)):
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else (raw or "")
        tail = text.rstrip().splitlines()[-lines:]
        parts.append(f"--- {name} (last {lines} lines) ---\n" + ("\n".join(tail) if tail else "(empty)"))
    return "\n".join(parts)


# Shell: parse.

_OPERATORS = frozenset({"&&", "||", ";", "|", "&", ";;", "|&"})
_REDIRECTS = frozenset({">", ">>", "<", "<<", "<<<", "2>", "&>", ">&"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line offset in the block, command line) with `\\` continuations joined and comment lines left out."""
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(text.splitlines()):
        if not pending:
            start = offset
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        yield start, " ".join(part.strip() for part in pending)
        pending = []
    if pending:
        yield start, " ".join(part.strip() for part in pending)


def split_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line: words split like the shell, on `&&`, `||`, `;`, `|`, redirections
    (and their target) and leading VAR=value assignments left out."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
            continue
        if token in _OPERATORS:
            commands.append([])
        elif token in _REDIRECTS or (token.endswith((">", "<")) and token.rstrip("<>").isdigit()):
            skip_next = True
        elif not commands[-1] and _ASSIGNMENT.match(token):
            continue
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def check_parse(block: Block, root: Path = REPO_ROOT) -> None:
    """Check every command of a parse-mode shell block without running it; raises naming the line and why."""
    problems = []
    for offset, line in logical_lines(block.text):
        try:
            commands = split_commands(line)
        except ValueError as exc:
            problems.append(f"line {block.line + 1 + offset}: {line}\n    cannot split it like the shell: {exc}")
            continue
        for words in commands:
            problem = check_command(words, root)
            if problem:
                problems.append(f"line {block.line + 1 + offset}: {shlex.join(words)}\n    {problem}")
    if problems:
        raise ExampleError("parse-mode example has commands that would fail:\n" + "\n".join(problems) +
                           f"\n\n{block.describe()}")


def check_command(words: Sequence[str], root: Path = REPO_ROOT) -> str | None:
    """Why one command of a parse-mode block would fail, or None when it checks out."""
    program = Path(words[0]).name
    args = list(words[1:])
    if program in ACCEPTED_PROGRAMS:
        return None
    if program == "fleetscaler":
        return check_fleetscaler_args(args)
    if program == "make":
        return check_make_args(args, root)
    if re.fullmatch(r"python(3(\.\d+)?)?", program):
        return check_python_args(args, root)
    if program == "pytest":
        return check_pytest_args(args, root)
    return f"{program}: not a command a parse-mode example may use (see docs/writing-docs.md)"


def check_fleetscaler_args(args: Sequence[str]) -> str | None:
    """Parse `fleetscaler ARGS` with the real click CLI, invoking nothing: an unknown command or option, a missing
    argument or a bad value is reported in click's words. Paths are not looked at (they may not exist here)."""
    from fleetscaler.cli.main import cli

    def keep(self: click.ParamType, value: object, param: object, ctx: object) -> object:
        return value

    with mock.patch.object(click.Path, "convert", keep), mock.patch.object(click.File, "convert", keep):
        try:
            ctx = cli.make_context("fleetscaler", list(args))
            command: click.Command = cli
            while isinstance(command, click.Group):
                rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
                if not rest:
                    return None  # `fleetscaler [options]` alone shows the help
                name, sub, rest = command.resolve_command(ctx, rest)
                assert sub is not None and name is not None
                ctx = sub.make_context(name, rest, parent=ctx)
                command = sub
        except click.exceptions.Exit:
            return None  # --help
        except click.ClickException as exc:
            return f"fleetscaler: {exc.format_message()}"
    return None


_TARGET = re.compile(r"^([A-Za-z0-9_.%/-]+(?:[ \t]+[A-Za-z0-9_.%/-]+)*)[ \t]*:(?![=:])")


def makefile_targets(root: Path = REPO_ROOT) -> set[str]:
    targets: set[str] = set()
    for line in (root / "Makefile").read_text(encoding="utf-8").splitlines():
        match = _TARGET.match(line)
        if match and not line.startswith("\t"):
            targets.update(t for t in match[1].split() if not t.startswith(".") or t == ".PHONY")
    return targets - {".PHONY"}


def check_make_args(args: Sequence[str], root: Path = REPO_ROOT) -> str | None:
    targets = makefile_targets(root)
    for arg in args:
        if arg.startswith("-"):
            return f"make: option {arg} is not checked; call the target alone"
        if "=" in arg:
            continue  # a variable: make deploy STACK=...
        if arg not in targets:
            return f"make: no target {arg!r} in the Makefile"
    return None


def check_python_args(args: Sequence[str], root: Path = REPO_ROOT) -> str | None:
    if len(args) >= 2 and args[0] == "-m":
        module = args[1]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        return None if found else f"python -m {module}: no such module"
    if args and args[0].endswith(".py"):
        return None if (root / args[0]).is_file() else f"python {args[0]}: no such file"
    return "python: a parse-mode example runs `python -m MODULE` or `python FILE.py`"


_PYTEST_VALUE_OPTIONS = frozenset(
    {"-k", "-m", "-p", "-o", "-c", "-W", "--deselect", "--ignore", "--rootdir", "--maxfail"}
)


def check_pytest_args(args: Sequence[str], root: Path = REPO_ROOT) -> str | None:
    """`pytest [options] [PATH[::TEST] ...]`: every path must exist."""
    previous = ""
    for arg in args:
        if not arg.startswith("-") and previous not in _PYTEST_VALUE_OPTIONS:
            path = arg.split("::", 1)[0]
            if not (root / path).exists():
                return f"pytest: no such file or folder {path}"
        previous = arg
    return None


def readme_links(markdown: str) -> list[tuple[int, str]]:
    """(line, target) of every relative link or image of a Markdown text (inline, reference-style and <img src>),
    outside code blocks and code spans; web, mail and in-page links left out."""
    found: list[tuple[int, str]] = []
    in_fence: str | None = None
    for number, line in enumerate(markdown.splitlines(), start=1):
        fence = _FENCE.match(line)
        if in_fence is not None:
            if line.strip() and set(line.strip()) == {in_fence[0]} and len(line.strip()) >= len(in_fence):
                in_fence = None
            continue
        if fence:
            in_fence = fence["fence"]
            continue
        prose = re.sub(r"`[^`]*`", "", line)
        targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
        targets += re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", prose)
        targets += re.findall(r"<img\s[^>]*src=\"([^\"]+)\"", prose)
        for target in targets:
            if re.match(r"^([a-z][a-z0-9+.-]*:|#|//)", target, re.IGNORECASE):
                continue
            found.append((number, target.split("#", 1)[0]))
    return found


def missing_link_targets(markdown: str, base: Path) -> list[str]:
    return [f"line {n}: {target}" for n, target in readme_links(markdown) if not (base / target).exists()]

