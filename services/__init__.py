"""itte's four services; each reads the same way (see README, "Code layout")."""
