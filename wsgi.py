"""The WSGI entry point: ``app`` for any WSGI server (waitress, gunicorn, uwsgi).

Settings come from config/defaults.toml, HUB_CONFIG and HUB_* variables.
Apply migrations first (``corridor db upgrade``).
"""

from hub import create_app

app = create_app()
