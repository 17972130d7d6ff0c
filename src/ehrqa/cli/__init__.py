"""The ``ehrqa`` command: thin Typer shells over the product and the lab."""
