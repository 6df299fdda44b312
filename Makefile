# Everyday commands. Each script installs what is missing first (scripts/setup.sh).
.PHONY: run dev test lint gen bench

run dev:            ## local stack + service in the foreground
	bash scripts/dev.sh

test:               ## every check CI runs
	bash scripts/test.sh

lint:               ## ruff, format check, mypy
	. .venv/bin/activate && ruff check . && ruff format --check . && mypy

gen:                ## regenerate the contract's Python code into clients/python
	. .venv/bin/activate && bash scripts/gen_protos.sh

bench:              ## benchmark figures (medians of repeated rounds, baseline side by side)
	. .venv/bin/activate && python -m uoom_orders_bench
