"""The project's command line: ``python -m cli run`` and friends."""
