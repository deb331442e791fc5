"""Data layer: CRM export parsing, column presets, SQLite storage with history, demo data."""
