"""Alembic revision scripts of the 'core' schema history (see hub/store/migrations.py)."""
