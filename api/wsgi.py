"""The WSGI entry point: the only module that builds an app at import."""

from api.app import create_app
from core.settings import Settings

app = create_app(Settings.from_env())
