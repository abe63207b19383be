"""The Alembic revision scripts of the sample plugin's schema history (``alembic_version_sample``)."""
