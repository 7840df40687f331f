# Shortcuts for the scripts a person and CI both run. ARGS go to the script, e.g.
#   make test ARGS="-k migrations -x"      make run ARGS="--port 9000"
ARGS ?=

.PHONY: run test bench settings-table initial-migration

run:
	bash scripts/run.sh $(ARGS)

test:
	bash scripts/test.sh $(ARGS)

bench:
	bash scripts/bench/run.sh $(ARGS)

# Rewrite README.md's table of BOTFLEET_* settings from botfleet/settings.py.
settings-table:
	.venv/bin/python scripts/settings_table.py --write

# Regenerate alembic/versions/0001_initial.py from botfleet/db/models.py (first release only:
# once botfleet is released, add a new revision with `alembic revision --autogenerate` instead).
initial-migration:
	rm -f alembic/versions/0001_initial.py
	tmp=$$(mktemp -d) && .venv/bin/alembic -x url=sqlite+aiosqlite:///$$tmp/empty.db \
		revision --autogenerate --rev-id 0001 -m initial && rm -rf $$tmp
	sed -i '/# ### /d; s/^Revises: $$/Revises:/' alembic/versions/0001_initial.py
