"""Alembic revision scripts of the 'slack' schema history (see hub/store/migrations.py)."""
