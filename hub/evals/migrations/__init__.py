"""Alembic revision scripts of the 'evals' schema history (see hub/store/migrations.py)."""
