"""Korean text forms used for matching: NFC data strings, a squashed matching form, jamo and initials.

- ``nfc``: data strings (categories, tags, rule keys) are compared after NFC (the domain's rule).
- ``squash``: the matching form of user text — NFC, lower case, no whitespace, no punctuation — so
  spacing variants ("배달 용기" / "배달용기") and case ("LED" / "led") meet.
- ``jamo``: the conjoining-jamo spelling (Unicode NFD), so an edit distance counts one wrong vowel
  ("페트벙") as one edit rather than one wrong syllable.
- ``initials``: the leading consonants as compatibility letters ("페트병" → "ㅍㅌㅂ"), for people who
  type only the initials.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
# Keep Hangul syllables, compatibility jamo, Latin letters and digits; everything else separates words.
_NOT_WORD = re.compile(r"[^0-9a-z\uac00-\ud7a3\u3131-\u318e]+")
# NFD leading consonants U+1100..U+1112, in order, as the compatibility letters people type.
_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_COMPAT_CONSONANTS = frozenset("ㄱㄲㄳㄴㄵㄶㄷㄸㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅃㅄㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ")


def nfc(text: str) -> str:
    """Korean data strings are compared after NFC normalisation."""
    return unicodedata.normalize("NFC", text)


def words(text: str) -> list[str]:
    """User text as lower-case words (NFC; punctuation separates)."""
    return [w for w in _NOT_WORD.split(nfc(text).lower()) if w]


def squash(text: str) -> str:
    """Matching form: NFC, lower case, without whitespace or punctuation."""
    return "".join(words(text))


def compact(text: str) -> str:
    """Data form of a name for lookups: NFC, lower case, without whitespace (punctuation kept)."""
    return _SPACE.sub("", nfc(text)).lower()


def jamo(text: str) -> str:
    """The conjoining-jamo spelling of ``text`` (syllables decomposed, everything else unchanged)."""
    return unicodedata.normalize("NFD", text)


def initials(text: str) -> str:
    """Leading consonants of the Hangul syllables in ``text`` ("페트병" → "ㅍㅌㅂ"); other characters are dropped."""
    out = []
    for char in text:
        if "가" <= char <= "힣":
            out.append(_INITIALS[(ord(char) - 0xAC00) // 588])
    return "".join(out)


def is_initials_query(text: str) -> bool:
    """True when the text is only compatibility consonants ("ㅍㅌㅂ"), i.e. someone typed initials."""
    stripped = squash(text)
    return bool(stripped) and all(char in _COMPAT_CONSONANTS for char in stripped)


# Conjoining jamo (what NFD produces) → the compatibility letter, for keyboard and sound lookups.
_CONJOINING = {
    **{chr(0x1100 + i): c for i, c in enumerate("ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ")},
    **{chr(0x1161 + i): c for i, c in enumerate("ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ")},
    **{chr(0x11A8 + i): c for i, c in enumerate("ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ")},
}
# The standard Korean (두벌식) layout on a QWERTY grid: neighbouring keys are likely slips.
_ROWS = ("ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔ", "ㅁㄴㅇㄹㅎㅗㅓㅏㅣ", "ㅋㅌㅊㅍㅠㅜㅡ")
_SHIFTED = {"ㅃ": "ㅂ", "ㅉ": "ㅈ", "ㄸ": "ㄷ", "ㄲ": "ㄱ", "ㅆ": "ㅅ", "ㅒ": "ㅐ", "ㅖ": "ㅔ"}
_KEYS = {char: (row, col + row * 0.5) for row, keys in enumerate(_ROWS) for col, char in enumerate(keys)}
# Letters that sound alike or differ only in tension/aspiration ("베터리", "알류미늄", "스치로폼").
_SOUND_ALIKE = [
    set(g)
    for g in ("ㅐㅔ", "ㅒㅖ", "ㅙㅞㅚ", "ㅢㅣ", "ㄱㄲㅋ", "ㄷㄸㅌ", "ㅂㅃㅍ", "ㅅㅆ", "ㅈㅉㅊ", "ㅓㅕ", "ㅗㅛ", "ㅜㅠ")
]


def plausible_slip(a: str, b: str) -> bool:
    """Whether two jamo (conjoining or compatibility) are a likely typo for each other: the same
    letter, neighbouring keys on the Korean keyboard, or letters that sound alike."""
    x, y = _CONJOINING.get(a, a), _CONJOINING.get(b, b)
    if x == y or any(x in group and y in group for group in _SOUND_ALIKE):
        return True
    kx, ky = _KEYS.get(_SHIFTED.get(x, x)), _KEYS.get(_SHIFTED.get(y, y))
    return kx is not None and ky is not None and abs(kx[0] - ky[0]) <= 1 and abs(kx[1] - ky[1]) <= 1


def one_plausible_edit(typed: str, known: str) -> bool:
    """``typed`` is ``known`` with one inserted or dropped jamo, or one plausible slip (jamo spellings)."""
    if len(typed) == len(known):
        diffs = [(a, b) for a, b in zip(typed, known, strict=True) if a != b]
        return len(diffs) <= 1 and all(plausible_slip(a, b) for a, b in diffs)
    short, long_ = sorted((typed, known), key=len)
    if len(long_) - len(short) != 1:
        return False
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def is_hangul_syllable(char: str) -> bool:
    return "가" <= char <= "힣"
