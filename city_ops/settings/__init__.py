"""Settings split by environment (Zulip-style): base holds what every environment shares; local, test and
production override. Pick one with DJANGO_SETTINGS_MODULE (manage.py defaults to local)."""
