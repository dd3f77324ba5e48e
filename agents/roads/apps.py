from django.apps import AppConfig


class RoadsAgentConfig(AppConfig):
    name = "agents.roads"
    label = "agent_roads"
    verbose_name = "Roads agent"
    url_prefix = "roads"  # mounts api_urls under /api/roads/ and console_urls under /roads/
    api_urls: str | None = "agents.roads.api.urls"
    console_urls: str | None = "agents.roads.urls"

    def ready(self) -> None:
        # The agent module registers itself; an agent still being built may not have one yet.
        import importlib
        import importlib.util

        from vision.heif import heif_register

        from . import signals  # noqa: F401  (follows the work orders it created)

        # HEIC/HEIF (iPhones) becomes readable by Pillow in every process (web, workers, commands): the
        # upload check, EXIF reading, the engine's decode and the privacy copy all go through Image.open.
        heif_register()

        if importlib.util.find_spec(f"{self.name}.agent") is not None:
            importlib.import_module(f"{self.name}.agent")
