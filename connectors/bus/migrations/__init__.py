"""Alembic revision scripts of the 'bus' schema history (see hub/store/migrations.py)."""
