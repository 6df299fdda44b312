"""The side-by-side command's arithmetic and how it finds the code it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from uoom_orders_bench.side_by_side import BARE, Comparison, Window, source_folder


def test_each_window_compares_cpu_per_call_and_the_pool_weighs_by_calls() -> None:
    comparison = Comparison(
        a=[Window(1.0, 1000), Window(0.5, 500), Window(1.0, 0)],
        b=[Window(1.2, 1000), Window(0.5, 250), Window(0.4, 400)],
    )
    # The third window is left out of the ratios: A completed nothing in it.
    assert comparison.ratios() == pytest.approx([1.2, 2.0])
    # Pooled: B 2.1 s over 1,650 calls against A 2.5 s over 1,500.
    assert comparison.pooled() == pytest.approx((2.1 / 1650) / (2.5 / 1500))


def test_a_source_is_a_checkout_or_its_server_folder_or_the_bare_server(tmp_path: Path) -> None:
    server = tmp_path / "checkout" / "server"
    (server / "uoom_orders").mkdir(parents=True)
    (server / "uoom_orders" / "__init__.py").write_text("")
    assert source_folder(str(tmp_path / "checkout")) == server
    assert source_folder(str(server)) == server
    assert source_folder(BARE) is None
    with pytest.raises(SystemExit, match="no uoom_orders package"):
        source_folder(str(tmp_path))
