"""Alembic revision scripts of the 'approvals' schema history (see hub/store/migrations.py)."""
