"""Streets, districts, flood zones and sensors named in a request, resolved to the city model's names (or the
zone's and sensor's codes) with fuzzy matching, so "Mannerheimntie", "Yrjonkatu" and "Pitkansillanranta"
find their place. Names are Latin script in both languages (a Chinese request writes Kaivokatu too)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.apps import apps
from rapidfuzz import fuzz, process

from city_ops.city.selectors import district_names, street_names, street_names_version

# A misspelt name still scores at least this (rapidfuzz's ratio: 2 x the longest common subsequence / both
# lengths); one typo in a 10-letter name scores 0.9, two swapped letters 0.87. Shorter names must match exactly (no "Kata" for "Kala").
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


@dataclass(frozen=True)
class Vocabulary:
    """Names folded once: `exact` by folded name, and those long enough to match fuzzily side by side with
    their folded aliases (the list rapidfuzz compares a word against)."""

    exact: dict[str, list[Name]]
    fuzzy_names: list[Name]
    fuzzy_aliases: list[str]
    longest_words: int

    @classmethod
    def of(cls, names: list[Name]) -> Vocabulary:
        exact: dict[str, list[Name]] = {}
        for name in names:
            exact.setdefault(fold(name.alias), []).append(name)
        fuzzy = [(name, fold(name.alias)) for name in names if len(fold(name.alias)) >= FUZZY_MIN_LENGTH]
        return cls(exact, [n for n, _ in fuzzy], [a for _, a in fuzzy],
                   max((len(n.alias.split()) for n in names), default=1))


# The streets' vocabulary per process, rebuilt when the network changes: a city has thousands of street
# names, read and folded in tens of milliseconds, while a request is parsed in a few.
_streets_cache: dict[tuple[int, int, int], list[Name]] = {}


def _street_names_cached() -> list[Name]:
    version = street_names_version()
    if version not in _streets_cache:
        _streets_cache.clear()
        _streets_cache[version] = [Name("street", n, n) for n in street_names()]
    return _streets_cache[version]


def vocabulary(kinds: frozenset[str]) -> Vocabulary:
    """Every name of the given kinds the city knows now (districts, zones and sensors: a few rows each)."""
    names: list[Name] = []
    if "street" in kinds:
        names += _street_names_cached()
    if "district" in kinds:
        names += [Name("district", n, n) for n in district_names()]
    for kind in ("zone", "sensor"):
        if kind in kinds:
            names += _agent_aliases(kind)
    return Vocabulary.of(names)


def _windows(text: str, longest: int):
    """Runs of 1..`longest` consecutive Latin words separated by spaces only: (start, end, folded)."""
    words = list(_WORD.finditer(text))
    for i, first in enumerate(words):
        for j in range(i, min(i + longest, len(words))):
            if j > i and text[words[j - 1].end():words[j].start()].strip():
                break
            yield first.start(), words[j].end(), fold(text[first.start():words[j].end()])


def _fuzzy(said: str, vocabulary: Vocabulary) -> list[tuple[Name, float]]:
    """The names `said` may be a misspelling of, with their scores."""
    if len(said) < FUZZY_MIN_LENGTH:
        return []
    matches = process.extract(said, vocabulary.fuzzy_aliases, scorer=fuzz.ratio,
                              score_cutoff=FUZZY_MIN_SCORE * 100, limit=None)
    return [(vocabulary.fuzzy_names[index], score / 100) for _, score, index in matches]


def _hits(text: str, vocabulary: Vocabulary) -> list[Hit]:
    hits = []
    for start, end, said in _windows(text, vocabulary.longest_words):
        exact = [(name, 1.0) for name in vocabulary.exact.get(said, ())]
        for name, score in exact or _fuzzy(said, vocabulary):
            hits.append(Hit(name.kind, name.value, score, start, end))
    return hits


def places_find(text: str, kinds: frozenset[str], names: Vocabulary | None = None) -> dict[str, str]:
    """The best place of each kind named in `text`: {"street": "Mannerheimintie", "district": "Kluuvi"}.
    Each stretch of the text names one place at most: the best-scoring reading wins, then the longer.
    `names`: the vocabulary of `kinds` when the caller has it already (read now otherwise)."""
    names = names or vocabulary(kinds)
    hits = sorted(_hits(text, names), key=lambda h: (-h.score, h.start - h.end))
    found: dict[str, str] = {}
    taken: list[tuple[int, int]] = []
    for hit in hits:
        if hit.kind in found or any(hit.start < end and start < hit.end for start, end in taken):
            continue
        found[hit.kind] = hit.value
        taken.append((hit.start, hit.end))
    return found
