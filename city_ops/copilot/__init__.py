"""The dispatcher copilot: a request in zh-Hans or English becomes calls of the tools the agents and platform
apps declare (`registry`), run as the requesting user; reads at once, writes only once confirmed. Two engines
choose the calls: a model behind an OpenAI-compatible endpoint (`llm`) and the embedded grammar (`grammar`),
which also takes over when the model fails."""
