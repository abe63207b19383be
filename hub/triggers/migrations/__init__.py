"""Alembic revision scripts of the 'triggers' schema history (see hub/store/migrations.py)."""
