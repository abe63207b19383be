"""Alembic revision scripts of the 'email' schema history (see hub/store/migrations.py)."""
