"""Persistence: SQLAlchemy tables, migrations, and the queries the rest of the system needs.

The store is an adapter: the core never imports it. Every component writes its events here,
and the monitor, reports and dashboard only read from here.
"""
