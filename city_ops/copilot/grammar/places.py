"""Streets, districts, flood zones and sensors named in a request, resolved to the city model's names (or the
zone's and sensor's codes) with fuzzy matching, so "Mannerheimntie", "Yrjonkatu" and "Pitkansillanranta"
find their place. Names are Latin script in both languages (a Chinese request writes Kaivokatu too)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

from django.apps import apps

from city_ops.city.selectors import district_names, street_names

# A misspelt name still scores at least this (difflib's ratio: 2 x matching characters / both lengths);
# one typo in a 10-letter name scores 0.9, two 0.8. Shorter names must match exactly (no "Kata" for "Kala").
FUZZY_MIN_SCORE = 0.84
FUZZY_MIN_LENGTH = 6
_WORD = re.compile(r"[A-Za-zÀ-ɏ][A-Za-zÀ-ɏ0-9\-]*")
# What a flood zone's or sensor's name says about it rather than where it is: "John Stenbergin ranta low
# point" is called "John Stenbergin ranta" by the dispatcher.
_GENERIC = re.compile(r"\b(shore|low point|strait|river reach|underpass|depth sensor|sea-level gauge|"
                      r"level gauge|rain gauge|park|sensor|gauge)\b", re.IGNORECASE)
# The flood agent's named things, read through the app registry: the platform never imports an agent, and
# without the flood agent installed there are no zones or sensors to name.
_AGENT_NAMED = {"zone": ("agent_flood", "FloodZone"), "sensor": ("agent_flood", "Sensor")}


@dataclass(frozen=True)
class Name:
    """One way to say a place: `alias` is matched, `value` is what the tool is given."""

    kind: str  # street | district | zone | sensor
    value: str
    alias: str


@dataclass(frozen=True)
class Hit:
    kind: str
    value: str
    score: float
    start: int
    end: int


def fold(text: str) -> str:
    """Case, accents and spaces dropped: "Eteläranta" and "etelaranta" are the same name."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and not ch.isspace()).casefold()


def _agent_aliases(kind: str) -> list[Name]:
    """A zone or sensor by its code, its full name, and its name without the generic words and
    parentheses ("Eteläranta shore (Market Square)" → "Eteläranta", "Market Square")."""
    app_label, model_name = _AGENT_NAMED[kind]
    if not apps.is_installed("agents.flood"):
        return []
    names = []
    for code, name in apps.get_model(app_label, model_name).objects.values_list("code", "name"):
        parts = [name, code, *re.split(r"[()]", _GENERIC.sub("", name))]
        names += [Name(kind, code, alias.strip()) for alias in dict.fromkeys(parts) if alias.strip()]
    return names


def vocabulary(kinds: frozenset[str]) -> list[Name]:
    """Every name of the given kinds the city knows today (read per request: a few hundred rows at most)."""
    names: list[Name] = []
    if "street" in kinds:
        names += [Name("street", n, n) for n in street_names()]
    if "district" in kinds:
        names += [Name("district", n, n) for n in district_names()]
    for kind in ("zone", "sensor"):
        if kind in kinds:
            names += _agent_aliases(kind)
    return names


def _windows(text: str, longest: int):
    """Runs of 1..`longest` consecutive Latin words separated by spaces only: (start, end, folded)."""
    words = list(_WORD.finditer(text))
    for i, first in enumerate(words):
        for j in range(i, min(i + longest, len(words))):
            if j > i and text[words[j - 1].end():words[j].start()].strip():
                break
            yield first.start(), words[j].end(), fold(text[first.start():words[j].end()])


def _score(said: str, alias: str) -> float:
    if said == alias:
        return 1.0
    if min(len(said), len(alias)) < FUZZY_MIN_LENGTH:
        return 0.0
    matcher = SequenceMatcher(None, said, alias)
    if matcher.real_quick_ratio() < FUZZY_MIN_SCORE or matcher.quick_ratio() < FUZZY_MIN_SCORE:
        return 0.0
    return matcher.ratio()


def _hits(text: str, names: list[Name]) -> list[Hit]:
    folded = [(name, fold(name.alias)) for name in names]
    longest = max((len(name.alias.split()) for name in names), default=1)
    hits = []
    for start, end, said in _windows(text, longest):
        for name, alias in folded:
            score = _score(said, alias)
            if score >= FUZZY_MIN_SCORE:
                hits.append(Hit(name.kind, name.value, score, start, end))
    return hits


def places_find(text: str, kinds: frozenset[str]) -> dict[str, str]:
    """The best place of each kind named in `text`: {"street": "Mannerheimintie", "district": "Kluuvi"}.
    Each stretch of the text names one place at most: the best-scoring reading wins, then the longer."""
    hits = sorted(_hits(text, vocabulary(kinds)), key=lambda h: (-h.score, h.start - h.end))
    found: dict[str, str] = {}
    taken: list[tuple[int, int]] = []
    for hit in hits:
        if hit.kind in found or any(hit.start < end and start < hit.end for start, end in taken):
            continue
        found[hit.kind] = hit.value
        taken.append((hit.start, hit.end))
    return found
