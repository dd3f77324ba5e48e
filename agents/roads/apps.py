from agents.runtime import appconfig


class RoadsAgentConfig(appconfig.AgentAppConfig):
    name = "agents.roads"
    label = "agent_roads"
    verbose_name = "Roads agent"
    url_prefix = "roads"
    api_urls = "agents.roads.api.urls"
    console_urls = "agents.roads.urls"
    # The crews' phones post to /api/inspections/photos/, a path older than the agents' own mounts.
    fixed_api_urls = {"inspections": "agents.roads.api.upload_urls"}

    def ready(self) -> None:
        from vision.heif import heif_register

        from . import signals  # noqa: F401  (follows the work orders it created)

        # HEIC/HEIF (iPhones) becomes readable by Pillow in every process (web, workers, commands): the
        # upload check, EXIF reading, the engine's decode and the privacy copy all go through Image.open.
        heif_register()
        super().ready()
