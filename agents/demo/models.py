"""The demo agent owns no tables: it reads the city model only."""
