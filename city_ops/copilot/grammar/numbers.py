"""Numbers as dispatchers say them: Chinese numerals (十五, 二十, 两) and English number words, rewritten as
Arabic digits before any slot is read, so every extractor needs only `\\d+`."""
from __future__ import annotations

import re

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_RUN = re.compile(f"[{''.join(_CN_DIGITS)}{''.join(_CN_UNITS)}]+")

_EN_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
             "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
             "forty": 40, "forty-five": 45, "sixty": 60}
_EN_RUN = re.compile(r"\b(" + "|".join(sorted(_EN_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def chinese_number(numeral: str) -> int:
    """The value of a Chinese numeral: 十五 → 15, 二十 → 20, 两 → 2, 一百零五 → 105, 三八 → 38 (digit by
    digit, as in a route or plan number said aloud)."""
    if not any(ch in _CN_UNITS for ch in numeral):
        return int("".join(str(_CN_DIGITS[ch]) for ch in numeral))
    total, digit = 0, None
    for ch in numeral:
        if ch in _CN_UNITS:
            # 十 alone (十五) means one ten.
            total += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit = None
        else:
            digit = _CN_DIGITS[ch]
    return total + (digit or 0)


def arabize(text: str) -> str:
    """`text` with every Chinese numeral and English number word replaced by its digits (停站十分钟 →
    停站10分钟, "eight minutes" → "8 minutes", 周一 → 周1)."""
    text = _CN_RUN.sub(lambda m: str(chinese_number(m.group())), text)
    return _EN_RUN.sub(lambda m: str(_EN_WORDS[m.group().lower()]), text)
