"""Alembic revision scripts of the 'telemetry' schema history (see hub/store/migrations.py)."""
