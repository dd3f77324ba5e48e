"""Routing core of the sanitation agent."""
