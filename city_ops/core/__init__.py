"""The platform's shared Django code: roles, permissions, audit, API clients, uploads, health, metrics."""
