"""Alembic revision scripts of the 'llm' schema history (see hub/store/migrations.py)."""
