"""The optional vision step (`COPILOT_VLM_MODEL`): a vision model on the copilot's OpenAI-compatible endpoint
describes a picture in one line. The picture goes as a base64 JPEG data URL in an `image_url` content part,
the way vLLM, Ollama, llama.cpp server and hosted GLM-4V endpoints take images."""
from __future__ import annotations

import base64

import openai
from django.conf import settings

from .llm import LlmUnavailable, llm_client, redacted

DESCRIPTION_MAX = 300


def vision_enabled() -> bool:
    return bool(settings.COPILOT_VLM_MODEL and settings.COPILOT_LLM_BASE_URL)


def jpeg_data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def vision_describe(*, jpeg: bytes, prompt: str) -> str:
    """The model's first line about the picture (at most 300 characters); LlmUnavailable when the endpoint
    fails, times out (COPILOT_VLM_TIMEOUT_S) or says nothing."""
    content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": jpeg_data_url(jpeg)}}]
    try:
        response = llm_client(settings.COPILOT_VLM_TIMEOUT_S).chat.completions.create(
            model=settings.COPILOT_VLM_MODEL, messages=[{"role": "user", "content": content}], max_tokens=80,
            temperature=0)
    except openai.APITimeoutError:
        raise LlmUnavailable(f"the vision model timed out (limit {settings.COPILOT_VLM_TIMEOUT_S} s)") from None
    except openai.OpenAIError as exc:
        raise LlmUnavailable(redacted(f"the vision model failed: {type(exc).__name__}: {exc}")[:300]) from None
    text = (response.choices[0].message.content or "").strip() if response.choices else ""
    line = text.splitlines()[0].strip() if text else ""
    if not line:
        raise LlmUnavailable("the vision model answered nothing")
    return line[:DESCRIPTION_MAX]
