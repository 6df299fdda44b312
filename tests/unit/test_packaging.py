"""The package is the service: its wheel and command line hold what runs in the image, and
nothing of the development tooling (tooling/: local stack, benchmark, fault injection)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from uoom_orders.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGE = ROOT / "server" / "uoom_orders"
TOOLING_PACKAGES = ("uoom_orders_devstack", "uoom_orders_bench", "uoom_orders_chaos")
# What used to live inside the runtime package before it moved to tooling/.
TOOLING_FOLDERS = ("benchmark", "devstack", "chaos")
IMAGE_COMMANDS = {"serve", "migrate", "create-tables", "rebuild", "reconcile", "dead-letters"}


def _imported_modules(tree: ast.AST) -> list[str]:
    """Every module an import statement names, and every literal import_module()/__import__()."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                names.append(str(first.value))
    return names


def test_runtime_package_never_imports_the_tooling() -> None:
    sources = sorted(RUNTIME_PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    offenders = [
        f"{source.relative_to(ROOT)}: {name}"
        for source in sources
        for name in _imported_modules(ast.parse(source.read_text(), str(source)))
        if name.split(".")[0] in TOOLING_PACKAGES
    ]
    assert offenders == []


def test_the_tooling_lives_outside_the_runtime_package() -> None:
    for folder in TOOLING_FOLDERS:
        assert not (RUNTIME_PACKAGE / folder).exists()
    for package in TOOLING_PACKAGES:
        assert (ROOT / "tooling" / package / "__init__.py").is_file()


def test_command_line_offers_only_what_works_in_the_image(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    (commands,) = [
        action
        for action in parser._actions  # argparse has no public accessor for subcommands
        if action.dest == "command"
    ]
    assert set(commands.choices or ()) == IMAGE_COMMANDS
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["dev"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'dev'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def service_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel the image installs, built from what the image's build context
    holds of the root project (pyproject.toml and server/, see .dockerignore)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", source / "pyproject.toml")
    shutil.copytree(
        ROOT / "server",
        source / "server",
        ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info", "build", "dist"),
    )
    wheels = tmp / "wheels"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--wheel-dir", str(wheels), str(source)),
        ],
        check=True,
        timeout=120,
        env={**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    (wheel,) = wheels.glob("uoom_orders-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        yield archive


def test_wheel_holds_the_service(service_wheel: zipfile.ZipFile) -> None:
    names = service_wheel.namelist()
    assert "uoom_orders/__main__.py" in names
    assert "uoom_orders/bootstrap.py" in names
    assert "uoom_orders/write/migrations/0001_initial.sql" in names
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    scripts = service_wheel.read(entry_points).decode().split()
    assert scripts == ["[console_scripts]", "uoom-orders", "=", "uoom_orders.__main__:main"]


def test_wheel_holds_no_tooling(service_wheel: zipfile.ZipFile) -> None:
    names = service_wheel.namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert {name for name in top_levels if not name.endswith(".dist-info")} == {"uoom_orders"}
    tooling = [
        name
        for name in names
        if any(part in TOOLING_FOLDERS for part in Path(name).parts)
        or any(package in name for package in TOOLING_PACKAGES)
    ]
    assert tooling == []
