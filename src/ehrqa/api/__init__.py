"""The HTTP service: a FastAPI app built by :func:`ehrqa.api.app.create_app`.

Install with ``pip install 'ehrqa[serve]'``. Routers live one module per area
(``hooks_routes`` for CDS Hooks, ``records_routes`` for records and document chunks) and
call library functions; the app factory wires them to the configuration, the record store
and the document library it is given.
"""
