"""The answer a user reads: in the request's language (Chinese characters in it: zh-Hans, else English),
made of the calls' outcomes where no model wrote one (the grammar engine, or after confirming)."""
from __future__ import annotations

import re

from django.utils.translation import gettext as _

from .executor import DONE, PROPOSED, CallOutcome

# CJK Unified Ideographs, Extension A and the compatibility block: what a zh-Hans request is written in.
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def request_language(text: str) -> str:
    return "zh-hans" if CJK.search(text or "") else "en"


def answer_compose(outcomes: list[CallOutcome]) -> str:
    if not outcomes:
        return _("I did not understand that. Try, for example: “which flood alerts are open”, “re-plan the buses "
                 "for tomorrow”, “close Mannerheimintie because of flooding”.")
    lines = []
    for o in outcomes:
        if o.status == DONE:
            lines.append(o.summary)
        elif o.status == PROPOSED:
            lines.append(_("Proposed, waiting for your confirmation: %(what)s") % {"what": o.summary})
        else:
            lines.append(_("Not done (%(tool)s): %(reason)s") % {"tool": o.tool, "reason": o.reason})
    return "\n".join(lines)


def links_of(outcomes: list[CallOutcome]) -> list[dict]:
    """Every outcome's links, each once, in order."""
    seen, links = set(), []
    for o in outcomes:
        for link in o.links:
            if link["url"] not in seen:
                seen.add(link["url"])
                links.append(link)
    return links
